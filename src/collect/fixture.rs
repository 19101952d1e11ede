//! A fake /proc tree for tests and benchmarks.
//!
//! Tests must not depend on what the host happens to run, so they build a small procfs of their
//! own with known counters and run the real collector on it. Files are rewritten in place (same
//! inode), as procfs contents change under a held descriptor.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::system::CpuTimes;

/// One process to lay out under `<root>/<pid>/`.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeProcess {
    pub pid: u32,
    pub ppid: u32,
    /// Effective uid, written to `status`.
    pub uid: u32,
    /// Raw `comm` bytes: anything a process can call itself.
    pub comm: Vec<u8>,
    /// Raw NUL-separated arguments.
    pub cmdline: Vec<u8>,
    pub state: char,
    pub utime: u64,
    pub stime: u64,
    pub threads: u64,
    pub start_ticks: u64,
    /// Resident pages as `statm` (exact) reports them.
    pub rss_pages: u64,
    /// What `stat` reports instead, where it differs (the kernel's unsummed per-CPU counters).
    pub stat_rss_pages: Option<u64>,
    /// Children's ticks (`cutime`, `cstime`).
    pub cutime: u64,
    pub cstime: u64,
    /// `Pss:` of smaps_rollup in kB; None: no smaps_rollup (as for a kernel thread).
    pub pss_kb: Option<u64>,
}

impl FakeProcess {
    pub fn new(pid: u32, uid: u32, comm: &str) -> Self {
        FakeProcess {
            pid,
            ppid: 1,
            uid,
            comm: comm.as_bytes().to_vec(),
            cmdline: format!("/usr/bin/{comm}\0").into_bytes(),
            state: 'S',
            utime: 0,
            stime: 0,
            threads: 1,
            start_ticks: 1000 + pid as u64,
            rss_pages: 256,
            stat_rss_pages: None,
            cutime: 0,
            cstime: 0,
            pss_kb: None,
        }
    }

    /// CPU of the children this process has waited for.
    pub fn children_cpu(mut self, cutime: u64, cstime: u64) -> Self {
        self.cutime = cutime;
        self.cstime = cstime;
        self
    }

    pub fn pss_kb(mut self, kb: u64) -> Self {
        self.pss_kb = Some(kb);
        self
    }

    pub fn stat_rss_pages(mut self, pages: u64) -> Self {
        self.stat_rss_pages = Some(pages);
        self
    }

    pub fn cpu(mut self, utime: u64, stime: u64) -> Self {
        self.utime = utime;
        self.stime = stime;
        self
    }

    pub fn rss_pages(mut self, pages: u64) -> Self {
        self.rss_pages = pages;
        self
    }

    pub fn threads(mut self, n: u64) -> Self {
        self.threads = n;
        self
    }

    pub fn cmdline(mut self, raw: &[u8]) -> Self {
        self.cmdline = raw.to_vec();
        self
    }

    fn stat_line(&self) -> Vec<u8> {
        let mut line = format!("{} (", self.pid).into_bytes();
        line.extend_from_slice(&self.comm);
        line.extend_from_slice(
            format!(
                ") {} {} {} {} 0 -1 4194304 100 0 0 0 {} {} {} {} 20 0 {} 0 {} {} {} \
                 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                self.state,
                self.ppid,
                self.pid,
                self.pid,
                self.utime,
                self.stime,
                self.cutime,
                self.cstime,
                self.threads,
                self.start_ticks,
                self.rss_pages * 4096 * 4,
                self.stat_rss_pages.unwrap_or(self.rss_pages),
            )
            .as_bytes(),
        );
        line
    }

    fn status(&self) -> String {
        let name = String::from_utf8_lossy(&self.comm).replace('\n', "\\n");
        format!(
            "Name:\t{name}\nUmask:\t0022\nState:\t{} (sleeping)\nTgid:\t{}\nPid:\t{}\nPPid:\t{}\n\
             Uid:\t{u}\t{u}\t{u}\t{u}\nGid:\t{u}\t{u}\t{u}\t{u}\nThreads:\t{}\n",
            self.state,
            self.pid,
            self.pid,
            self.ppid,
            self.threads,
            u = self.uid
        )
    }
}

/// Machine-wide figures for the fixture's system files.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeSystem {
    pub cpu_cores: Vec<CpuTimes>,
    pub mem_total_kb: u64,
    pub mem_free_kb: u64,
    pub mem_available_kb: u64,
    pub buffers_kb: u64,
    pub cached_kb: u64,
    pub swap_total_kb: u64,
    pub swap_free_kb: u64,
    pub load: [f64; 3],
    pub uptime_secs: f64,
    pub boot_time: i64,
    /// (device, sectors read, sectors written, io ticks ms)
    pub disks: Vec<(String, u64, u64, u64)>,
    /// (interface, rx bytes, tx bytes)
    pub net: Vec<(String, u64, u64)>,
    pub pressure: bool,
}

impl Default for FakeSystem {
    fn default() -> Self {
        FakeSystem {
            cpu_cores: vec![CpuTimes::default(); 4],
            mem_total_kb: 16 * 1024 * 1024,
            mem_free_kb: 8 * 1024 * 1024,
            mem_available_kb: 12 * 1024 * 1024,
            buffers_kb: 512 * 1024,
            cached_kb: 3 * 1024 * 1024,
            swap_total_kb: 4 * 1024 * 1024,
            swap_free_kb: 3 * 1024 * 1024,
            load: [1.5, 1.0, 0.5],
            uptime_secs: 86_400.0,
            boot_time: 1_700_000_000,
            disks: vec![("sda".into(), 0, 0, 0), ("sda1".into(), 0, 0, 0)],
            net: vec![("eth0".into(), 0, 0)],
            pressure: true,
        }
    }
}

fn sum_cpu(cores: &[CpuTimes]) -> CpuTimes {
    cores.iter().fold(CpuTimes::default(), |a, c| CpuTimes {
        user: a.user + c.user,
        nice: a.nice + c.nice,
        system: a.system + c.system,
        idle: a.idle + c.idle,
        iowait: a.iowait + c.iowait,
        irq: a.irq + c.irq,
        softirq: a.softirq + c.softirq,
        steal: a.steal + c.steal,
        guest: a.guest + c.guest,
    })
}

fn cpu_line(label: &str, c: &CpuTimes) -> String {
    format!(
        "{label} {} {} {} {} {} {} {} {} {} 0\n",
        c.user, c.nice, c.system, c.idle, c.iowait, c.irq, c.softirq, c.steal, c.guest
    )
}

/// A fake /proc rooted at a directory the caller owns (usually a tempdir).
pub struct FakeProc {
    root: PathBuf,
}

impl FakeProc {
    pub fn create(root: &Path, system: &FakeSystem) -> io::Result<Self> {
        fs::create_dir_all(root.join("net"))?;
        fs::create_dir_all(root.join("pressure"))?;
        let f = FakeProc {
            root: root.to_path_buf(),
        };
        f.set_system(system)?;
        Ok(f)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Rewrite every system file from `s`.
    pub fn set_system(&self, s: &FakeSystem) -> io::Result<()> {
        let mut stat = cpu_line("cpu", &sum_cpu(&s.cpu_cores));
        for (i, c) in s.cpu_cores.iter().enumerate() {
            stat.push_str(&cpu_line(&format!("cpu{i}"), c));
        }
        stat.push_str(&format!(
            "intr 0\nctxt 1000\nbtime {}\nprocesses 500\nprocs_running 3\nprocs_blocked 1\n\
             softirq 0 0 0 0 0 0 0 0 0 0 0\n",
            s.boot_time
        ));
        self.write("stat", stat.as_bytes())?;

        let mem = format!(
            "MemTotal: {} kB\nMemFree: {} kB\nMemAvailable: {} kB\nBuffers: {} kB\nCached: {} kB\n\
             SwapCached: 0 kB\nActive: 0 kB\nInactive: 0 kB\nSwapTotal: {} kB\nSwapFree: {} kB\n\
             Dirty: 0 kB\nWriteback: 0 kB\nMapped: 0 kB\nSlab: 0 kB\nSReclaimable: 0 kB\n\
             Committed_AS: 0 kB\nVmallocTotal: 0 kB\nVmallocUsed: 0 kB\nVmallocChunk: 0 kB\n",
            s.mem_total_kb,
            s.mem_free_kb,
            s.mem_available_kb,
            s.buffers_kb,
            s.cached_kb,
            s.swap_total_kb,
            s.swap_free_kb
        );
        self.write("meminfo", mem.as_bytes())?;
        self.write(
            "loadavg",
            format!("{} {} {} 2/345 6789\n", s.load[0], s.load[1], s.load[2]).as_bytes(),
        )?;
        self.write(
            "uptime",
            format!("{:.2} {:.2}\n", s.uptime_secs, s.uptime_secs).as_bytes(),
        )?;
        let mut disks = String::new();
        for (i, (dev, rd, wr, ticks)) in s.disks.iter().enumerate() {
            disks.push_str(&format!(
                "   8 {i} {dev} 100 0 {rd} 50 200 0 {wr} 80 0 {ticks} 130 0 0 0 0 0 0\n"
            ));
        }
        self.write("diskstats", disks.as_bytes())?;
        let mut net = String::from(
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets \
             errs drop fifo colls carrier compressed\n    lo: 999 9 0 0 0 0 0 0 999 9 0 0 0 0 0 0\n",
        );
        for (name, rx, tx) in &s.net {
            net.push_str(&format!(
                "{name:>6}: {rx} 10 0 0 0 0 0 0 {tx} 20 0 0 0 0 0 0\n"
            ));
        }
        self.write("net/dev", net.as_bytes())?;
        if s.pressure {
            let some = "some avg10=1.50 avg60=1.00 avg300=0.50 total=12345\n";
            let full = "full avg10=0.25 avg60=0.10 avg300=0.05 total=2345\n";
            for f in ["cpu", "memory", "io"] {
                self.write(&format!("pressure/{f}"), format!("{some}{full}").as_bytes())?;
            }
        }
        Ok(())
    }

    pub fn add_process(&self, p: &FakeProcess) -> io::Result<()> {
        let dir = self.root.join(p.pid.to_string());
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("stat"), p.stat_line())?;
        fs::write(dir.join("status"), p.status())?;
        fs::write(dir.join("cmdline"), &p.cmdline)?;
        fs::write(
            dir.join("statm"),
            format!(
                "{} {} 100 10 0 {} 0\n",
                p.rss_pages * 4,
                p.rss_pages,
                p.rss_pages / 2
            ),
        )?;
        if let Some(pss) = p.pss_kb {
            fs::write(
                dir.join("smaps_rollup"),
                format!(
                    "00400000-7fff0000 ---p 00000000 00:00 0    [rollup]\nRss: {} kB\nPss: {pss} kB\n",
                    p.rss_pages * 4
                ),
            )?;
        }
        Ok(())
    }

    /// Rewrite a process's counters in place, as the kernel does between refreshes.
    pub fn update_process(&self, p: &FakeProcess) -> io::Result<()> {
        self.add_process(p)
    }

    pub fn remove_process(&self, pid: u32) -> io::Result<()> {
        fs::remove_dir_all(self.root.join(pid.to_string()))
    }

    /// Make a process's entries unreadable by replacing them with directories (reads fail with
    /// EISDIR, as hidepid or a permission error would fail them, whoever runs the test).
    pub fn make_unreadable(&self, pid: u32) -> io::Result<()> {
        let dir = self.root.join(pid.to_string());
        for f in ["stat", "status", "cmdline", "statm"] {
            let path = dir.join(f);
            let _ = fs::remove_file(&path);
            fs::create_dir_all(&path)?;
        }
        Ok(())
    }

    /// A DRM device as sysfs lists it: `<root>/sys/class/drm/card<N>/device` pointing at a PCI
    /// device directory whose `driver` link names `driver`. Returns that directory, for the
    /// driver's own files (`gpu_busy_percent`, `mem_info_vram_total`, `hwmon/…`).
    pub fn add_drm_device(&self, card: u32, pdev: &str, driver: &str) -> io::Result<PathBuf> {
        let sys = self.root.join("sys");
        let dev = sys.join("devices/pci0000:00").join(pdev);
        let drv = sys.join("bus/pci/drivers").join(driver);
        fs::create_dir_all(&dev)?;
        fs::create_dir_all(&drv)?;
        let class = sys.join("class/drm").join(format!("card{card}"));
        fs::create_dir_all(&class)?;
        let _ = fs::remove_file(class.join("device"));
        std::os::unix::fs::symlink(&dev, class.join("device"))?;
        let _ = fs::remove_file(dev.join("driver"));
        std::os::unix::fs::symlink(&drv, dev.join("driver"))?;
        Ok(dev)
    }

    /// An open file of process `pid`: `fd/<fd>` links to `target`, `fdinfo/<fd>` holds `fdinfo`.
    pub fn add_fd(&self, pid: u32, fd: u32, target: &str, fdinfo: &str) -> io::Result<()> {
        let dir = self.root.join(pid.to_string());
        fs::create_dir_all(dir.join("fd"))?;
        fs::create_dir_all(dir.join("fdinfo"))?;
        let link = dir.join("fd").join(fd.to_string());
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(target, link)?;
        fs::write(dir.join("fdinfo").join(fd.to_string()), fdinfo)
    }

    fn write(&self, rel: &str, data: &[u8]) -> io::Result<()> {
        fs::write(self.root.join(rel), data)
    }
}
