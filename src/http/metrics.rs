//! `GET /metrics`: the Prometheus text exposition format, version 0.0.4.
//!
//! Written by hand rather than through a metrics crate: every figure already lives in the
//! latest snapshot or in the daemon's atomic counters, so rendering on request is a few string
//! writes and there is no second registry to keep in step. Conventions followed (and checked by
//! `promtool check metrics`): `sysmon_` prefix, base units (bytes, seconds, ratios 0–1), counters
//! end in `_total`, gauges do not, each family's `# HELP` and `# TYPE` once before its samples,
//! and label values (user names, disk paths: chosen by users) cleaned of control characters and
//! escaped.

use std::fmt::Write as _;
use std::time::Instant;

use crate::counters::Counters;
use crate::model::{GpuDevice, GpuStats, Metric, Severity, Status, UserGpu, UserStats};

use super::Latest;

/// The exposition's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Gauge,
    Counter,
}

/// A document being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Start a family: its help line and type.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.out.push('\n');
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value: control characters dropped (`sanitize::clean`), then `\`, `"` and newline
/// escaped as the format requires.
pub fn escape_label(v: &str) -> String {
    let clean = crate::sanitize::clean(v);
    let mut out = String::with_capacity(clean.len());
    for c in clean.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Help text: `\` and newline escaped.
pub fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Go's float syntax as Prometheus parses it: `NaN`, `+Inf`, `-Inf`, else a decimal number.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Light => "light",
        Status::Medium => "medium",
        Status::Heavy => "heavy",
    }
}

const SEVERITIES: [Severity; 4] = [
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

/// How one per-user gauge is read from a user's figures.
type UserFigure = fn(&crate::model::UserStats) -> f64;

/// The whole document: sysmon's own counters always, sample figures once there is a sample.
pub fn render(latest: Option<&Latest>, counters: &Counters, now: Instant) -> String {
    use Kind::{Counter, Gauge};
    let mut e = Exposition::default();
    let c = |a: &std::sync::atomic::AtomicU64| Counters::get(a) as f64;
    e.single(
        "sysmon_samples_total",
        Counter,
        "Samples taken since the daemon started.",
        c(&counters.samples),
    );
    e.single(
        "sysmon_sample_errors_total",
        Counter,
        "Samples that failed to be collected.",
        c(&counters.sample_errors),
    );
    e.single(
        "sysmon_collection_seconds_total",
        Counter,
        "Time spent collecting and evaluating samples.",
        c(&counters.collection_micros) / 1e6,
    );
    e.single(
        "sysmon_collection_duration_seconds",
        Gauge,
        "How long the last sample took to collect and evaluate.",
        c(&counters.last_collection_micros) / 1e6,
    );
    e.single(
        "sysmon_emails_sent_total",
        Counter,
        "Alert emails the SMTP server accepted.",
        c(&counters.emails_sent),
    );
    e.single(
        "sysmon_emails_failed_total",
        Counter,
        "Alert email delivery attempts that failed.",
        c(&counters.emails_failed),
    );
    e.single(
        "sysmon_store_errors_total",
        Counter,
        "Failed reads and writes of the history database by the sampling loop.",
        c(&counters.store_errors),
    );
    e.single(
        "sysmon_store_buffered_samples",
        Gauge,
        "Samples held in memory because the database could not be written.",
        c(&counters.buffered),
    );
    e.single(
        "sysmon_store_damaged",
        Gauge,
        "1 once the database was found damaged while running: nothing more is written to it.",
        if counters
            .store_damaged
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            1.0
        } else {
            0.0
        },
    );
    let Some(l) = latest else {
        return e.finish();
    };
    let s = &l.snapshot.system;
    let m = &s.memory;
    e.single(
        "sysmon_last_sample_timestamp_seconds",
        Gauge,
        "When the last sample was taken, in seconds since the Unix epoch.",
        l.snapshot.at.0 as f64 / 1000.0,
    );
    e.single(
        "sysmon_last_sample_age_seconds",
        Gauge,
        "Seconds since the last sample.",
        now.saturating_duration_since(l.sampled).as_secs_f64(),
    );
    e.family(
        "sysmon_status",
        Gauge,
        "The machine's overall status (1 for the current one).",
    );
    for st in [Status::Light, Status::Medium, Status::Heavy] {
        let v = if l.status.status == st { 1.0 } else { 0.0 };
        e.sample("sysmon_status", &[("status", status_name(st))], v);
    }
    e.single(
        "sysmon_system_cpu_usage_ratio",
        Gauge,
        "Busy share of all CPU cores (0-1).",
        s.cpu.total.busy / 100.0,
    );
    e.single(
        "sysmon_system_cpu_cores",
        Gauge,
        "Number of CPU cores.",
        s.cpu.count as f64,
    );
    e.single(
        "sysmon_system_memory_total_bytes",
        Gauge,
        "Physical memory.",
        m.total_bytes as f64,
    );
    e.single(
        "sysmon_system_memory_used_bytes",
        Gauge,
        "Memory in use, excluding buffers and page cache.",
        m.used_bytes as f64,
    );
    e.single(
        "sysmon_system_memory_available_bytes",
        Gauge,
        "Memory available for new work without swapping.",
        m.available_bytes as f64,
    );
    e.single(
        "sysmon_system_swap_total_bytes",
        Gauge,
        "Swap space.",
        m.swap_total_bytes as f64,
    );
    e.single(
        "sysmon_system_swap_used_bytes",
        Gauge,
        "Swap space in use.",
        m.swap_used_bytes as f64,
    );
    e.single(
        "sysmon_system_load1",
        Gauge,
        "Load average over one minute.",
        s.load.one,
    );
    e.single(
        "sysmon_system_load5",
        Gauge,
        "Load average over five minutes.",
        s.load.five,
    );
    e.single(
        "sysmon_system_load15",
        Gauge,
        "Load average over fifteen minutes.",
        s.load.fifteen,
    );
    e.single(
        "sysmon_system_processes",
        Gauge,
        "Processes on the machine.",
        s.tasks.processes as f64,
    );
    e.single(
        "sysmon_system_threads",
        Gauge,
        "Threads on the machine.",
        s.tasks.threads as f64,
    );
    e.single(
        "sysmon_system_uptime_seconds",
        Gauge,
        "Seconds since the machine booted.",
        s.uptime_secs,
    );
    e.single(
        "sysmon_cpu_unattributed_cores",
        Gauge,
        "Busy CPU cores no user is charged with (interrupts, ended processes of unknown owner).",
        l.snapshot.accounting.unattributed_cores,
    );
    e.single(
        "sysmon_cpu_exit_records",
        Gauge,
        "1 when ended processes' CPU comes from the kernel's exit records (exact), 0 when from their reapers' children's times.",
        f64::from(l.snapshot.accounting.exited_source == crate::model::ExitedSource::ExitRecords),
    );
    let disks: Vec<_> = s.disks.iter().filter(|d| d.ok).collect();
    e.family(
        "sysmon_system_disk_total_bytes",
        Gauge,
        "Size of each monitored filesystem.",
    );
    for d in &disks {
        e.sample(
            "sysmon_system_disk_total_bytes",
            &[("path", &d.path)],
            d.total_bytes as f64,
        );
    }
    e.family(
        "sysmon_system_disk_used_bytes",
        Gauge,
        "Space used on each monitored filesystem.",
    );
    for d in &disks {
        e.sample(
            "sysmon_system_disk_used_bytes",
            &[("path", &d.path)],
            d.used_bytes as f64,
        );
    }
    let users = &l.snapshot.users;
    let per_user: [(&str, &str, UserFigure); 8] = [
        (
            "sysmon_user_cpu_usage_ratio",
            "Share of the whole machine's CPU used by the user's processes (0-1).",
            |u| u.cpu_percent / 100.0,
        ),
        (
            "sysmon_user_cpu_cores",
            "CPU cores kept busy by the user's processes.",
            |u| u.cpu_cores,
        ),
        (
            "sysmon_user_cpu_exited_cores",
            "Of sysmon_user_cpu_cores: processes that ended between two samples.",
            |u| u.exited_cpu_cores,
        ),
        (
            "sysmon_user_memory_bytes",
            "Memory of the user's processes, a page shared by several counted once (PSS sum where measured, else RSS).",
            |u| u.memory_bytes as f64,
        ),
        (
            "sysmon_user_memory_rss_bytes",
            "Resident memory summed over the user's processes (a shared page counts once per process).",
            |u| u.rss_bytes as f64,
        ),
        (
            "sysmon_user_memory_ratio",
            "Share of physical memory used by the user's processes (0-1).",
            |u| u.memory_percent / 100.0,
        ),
        ("sysmon_user_processes", "Processes the user owns.", |u| {
            u.processes as f64
        }),
        (
            "sysmon_user_threads",
            "Threads the user's processes run.",
            |u| u.threads as f64,
        ),
    ];
    for (name, help, value) in per_user {
        e.family(name, Gauge, help);
        for u in users {
            e.sample(name, &[("user", &u.name)], value(u));
        }
    }
    e.family(
        "sysmon_user_persistent",
        Gauge,
        "1 while a tracked user has been over a limit for their persistent_minutes.",
    );
    // GPU memory only where there are GPUs, so that other machines' output is unchanged.
    let metrics: &[Metric] = if l.snapshot.gpu.is_empty() {
        &[Metric::Cpu, Metric::Memory]
    } else {
        &[Metric::Cpu, Metric::Memory, Metric::GpuMemory]
    };
    // A user under the CPU and memory minimums is still followed on the GPU memory they hold.
    for u in users.iter().filter(|u| u.tracked || u.gpu.is_some()) {
        let followed = metrics
            .iter()
            .filter(|&&m| u.tracked || m == Metric::GpuMemory);
        for &metric in followed {
            let on = l
                .persistent
                .iter()
                .any(|(name, m)| *m == metric && name.as_str() == &*u.name);
            e.sample(
                "sysmon_user_persistent",
                &[("user", &u.name), ("metric", metric.as_str())],
                if on { 1.0 } else { 0.0 },
            );
        }
    }
    if !l.snapshot.gpu.is_empty() {
        gpu_families(&mut e, &l.snapshot.gpu, users);
    }
    e.family(
        "sysmon_alerts_open",
        Gauge,
        "Open and acknowledged alerts by severity.",
    );
    for (i, sev) in SEVERITIES.iter().enumerate() {
        e.sample(
            "sysmon_alerts_open",
            &[("severity", sev.as_str())],
            l.open_by_severity[i] as f64,
        );
    }
    e.finish()
}

/// Per device and per user GPU figures; none at all on a machine without GPUs.
fn gpu_families(e: &mut Exposition, gpu: &GpuStats, users: &[UserStats]) {
    use Kind::Gauge;
    type DeviceFigure = fn(&GpuDevice) -> Option<f64>;
    let per_device: [(&str, &str, DeviceFigure); 6] = [
        (
            "sysmon_gpu_utilization_ratio",
            "Share of the interval the GPU was busy (0-1), as its driver reports it.",
            |d| d.utilization_percent.map(|p| p / 100.0),
        ),
        (
            "sysmon_gpu_memory_used_bytes",
            "Device memory in use.",
            |d| d.memory_used_bytes.map(|b| b as f64),
        ),
        (
            "sysmon_gpu_memory_total_bytes",
            "Device memory in all.",
            |d| d.memory_total_bytes.map(|b| b as f64),
        ),
        (
            "sysmon_gpu_temperature_celsius",
            "GPU core temperature.",
            |d| d.temperature_celsius,
        ),
        ("sysmon_gpu_power_watts", "Power the board draws.", |d| {
            d.power_watts
        }),
        ("sysmon_gpu_processes", "Processes holding the GPU.", |d| {
            Some(d.processes as f64)
        }),
    ];
    for (name, help, value) in per_device {
        e.family(name, Gauge, help);
        for d in &gpu.devices {
            if let Some(v) = value(d) {
                let label = d.label();
                e.sample(
                    name,
                    &[("gpu", &label), ("uuid", &d.id), ("name", &d.name)],
                    v,
                );
            }
        }
    }
    type GpuUserFigure = fn(&UserGpu) -> f64;
    let per_user: [(&str, &str, GpuUserFigure); 5] = [
        (
            "sysmon_gpu_user_memory_bytes",
            "GPU memory held by the user's processes, over all GPUs.",
            |g| g.memory_bytes as f64,
        ),
        (
            "sysmon_gpu_user_memory_ratio",
            "Share of all GPUs' memory held by the user's processes (0-1).",
            |g| g.memory_percent / 100.0,
        ),
        (
            "sysmon_gpu_user_utilization_ratio",
            "Share of all GPUs kept busy by the user's processes (0-1), where drivers report it per process.",
            |g| g.utilization_percent / 100.0,
        ),
        (
            "sysmon_gpu_user_devices",
            "GPUs (or MIG instances) the user's processes hold.",
            |g| g.devices as f64,
        ),
        (
            "sysmon_gpu_user_processes",
            "The user's processes holding a GPU.",
            |g| g.processes as f64,
        ),
    ];
    for (name, help, value) in per_user {
        e.family(name, Gauge, help);
        for u in users {
            if let Some(g) = &u.gpu {
                e.sample(name, &[("user", &u.name)], value(g));
            }
        }
    }
    e.family(
        "sysmon_gpu_user_device_memory_bytes",
        Gauge,
        "GPU memory a user's processes hold on one GPU.",
    );
    let mut held: Vec<(&str, &GpuDevice, u64)> = Vec::new();
    for p in &gpu.processes {
        let (Some(user), Some(d)) = (&p.user, gpu.devices.iter().find(|d| d.id == p.device)) else {
            continue;
        };
        match held.iter_mut().find(|h| h.0 == &**user && h.1.id == d.id) {
            Some(h) => h.2 += p.memory_bytes.unwrap_or(0),
            None => held.push((user, d, p.memory_bytes.unwrap_or(0))),
        }
    }
    for (user, d, bytes) in held {
        let label = d.label();
        e.sample(
            "sysmon_gpu_user_device_memory_bytes",
            &[("user", user), ("gpu", &label), ("uuid", &d.id)],
            bytes as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_cleaned() {
        assert_eq!(escape_label("alice"), "alice");
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        // Newlines become spaces and escape sequences lose their control characters.
        assert_eq!(escape_label("a\nb\x1b[31m"), "a b[31m");
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn values_use_prometheus_float_syntax() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(-3.5), "-3.5");
    }

    #[test]
    fn a_family_has_help_and_type_before_its_samples() {
        let mut e = Exposition::default();
        e.family("x_bytes", Kind::Gauge, "Some bytes.");
        e.sample("x_bytes", &[("user", "bob"), ("path", "/a\"b")], 5.0);
        e.single("y_total", Kind::Counter, "Things.", 2.0);
        assert_eq!(
            e.finish(),
            "# HELP x_bytes Some bytes.\n# TYPE x_bytes gauge\n\
             x_bytes{user=\"bob\",path=\"/a\\\"b\"} 5\n\
             # HELP y_total Things.\n# TYPE y_total counter\ny_total 2\n"
        );
    }

    #[test]
    fn without_a_sample_only_the_daemons_counters_are_shown() {
        let c = Counters::default();
        Counters::add(&c.samples, 3);
        let text = render(None, &c, Instant::now());
        assert!(text.contains("\nsysmon_samples_total 3\n"), "{text}");
        assert!(text.contains("\nsysmon_store_damaged 0\n"), "{text}");
        c.store_damaged
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let damaged = render(None, &c, Instant::now());
        assert!(damaged.contains("\nsysmon_store_damaged 1\n"), "{damaged}");
        assert!(!text.contains("sysmon_user_"));
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let mut parts = line.split(' ').skip(2);
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
        }
    }

    #[test]
    fn users_are_labelled_escaped_and_flagged_when_persistent() {
        use crate::model::{Snapshot, StatusReport, UserStats};
        let user = |name: &str, tracked: bool| UserStats {
            uid: 1000,
            name: name.into(),
            cpu_percent: 50.0,
            cpu_cores: 1.0,
            exited_cpu_cores: 0.0,
            memory_bytes: 1024,
            memory_percent: 1.0,
            rss_bytes: 4096,
            memory_source: crate::model::MemorySource::Pss,
            processes: 3,
            threads: 4,
            tracked,
            top_processes: Vec::new(),
            pids: Vec::new(),
            gpu: None,
        };
        let latest = Latest {
            snapshot: Snapshot {
                users: vec![
                    user("alice", true),
                    user("ev\"il\u{1b}", true),
                    user("x", false),
                ],
                ..Snapshot::default()
            },
            status: StatusReport::default(),
            status_json: "{}".into(),
            open_by_severity: [0, 1, 2, 0],
            persistent: vec![("alice".into(), Metric::Cpu)],
            sampled: Instant::now(),
        };
        let text = render(Some(&latest), &Counters::default(), Instant::now());
        assert!(text.contains("sysmon_user_cpu_usage_ratio{user=\"alice\"} 0.5\n"));
        assert!(
            text.contains("sysmon_user_processes{user=\"ev\\\"il\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("sysmon_user_persistent{user=\"alice\",metric=\"cpu\"} 1\n"));
        assert!(text.contains("sysmon_user_persistent{user=\"alice\",metric=\"memory\"} 0\n"));
        assert!(!text.contains("sysmon_user_persistent{user=\"x\""));
        assert!(!text.contains("gpu_memory"), "no GPU rows without GPUs");
        assert!(text.contains("sysmon_alerts_open{severity=\"high\"} 2\n"));
        assert!(text.contains("sysmon_status{status=\"light\"} 1\n"));
        assert_eq!(text.matches("# TYPE sysmon_user_processes ").count(), 1);
    }

    #[test]
    fn gpus_per_device_and_per_user_only_where_there_are_gpus() {
        use crate::model::{GpuProcess, Snapshot, StatusReport};
        let latest = |snapshot: Snapshot| Latest {
            snapshot,
            status: StatusReport::default(),
            status_json: "{}".into(),
            open_by_severity: [0; 4],
            persistent: Vec::new(),
            sampled: Instant::now(),
        };
        let none = render(
            Some(&latest(Snapshot::default())),
            &Counters::default(),
            Instant::now(),
        );
        assert!(!none.contains("sysmon_gpu"), "{none}");

        let device = |index, id: &str, mig| GpuDevice {
            index,
            id: id.into(),
            name: "NVIDIA A100".into(),
            driver: "nvidia".into(),
            mig,
            utilization_percent: mig.is_none().then_some(87.0),
            memory_used_bytes: Some(30 << 30),
            memory_total_bytes: Some(80 << 30),
            memory_percent: Some(37.5),
            temperature_celsius: mig.is_none().then_some(64.0),
            power_watts: None,
            processes: 1,
        };
        let process = |pid, user: Option<&str>, dev: &str, bytes| GpuProcess {
            pid,
            uid: user.map(|_| 1001),
            user: user.map(Into::into),
            name: None,
            device: dev.into(),
            device_index: 0,
            kind: "compute".into(),
            memory_bytes: Some(bytes),
            utilization_percent: None,
        };
        let mut alice = UserStats::new(1001, "alice".into());
        alice.gpu = Some(UserGpu {
            devices: 2,
            device_ids: vec!["GPU-0".into(), "MIG-1".into()],
            memory_bytes: 3 << 30,
            memory_percent: 1.875,
            utilization_percent: 42.5,
            processes: 2,
        });
        let mut bob = alice.clone();
        bob.name = "bob".into();
        bob.gpu = None;
        let snap = Snapshot {
            users: vec![alice, bob],
            gpu: GpuStats {
                devices: vec![
                    device(0, "GPU-0", None),
                    device(
                        0,
                        "MIG-1",
                        Some(crate::model::MigInfo {
                            parent_index: 1,
                            gpu_instance: Some(1),
                            compute_instance: Some(0),
                        }),
                    ),
                ],
                processes: vec![
                    process(10, Some("alice"), "GPU-0", 1 << 30),
                    process(11, Some("alice"), "GPU-0", 1 << 30),
                    process(12, Some("alice"), "MIG-1", 1 << 30),
                    process(4242, None, "GPU-0", 5 << 30),
                ],
            },
            ..Snapshot::default()
        };
        let text = render(Some(&latest(snap)), &Counters::default(), Instant::now());
        assert!(text.contains(
            "sysmon_gpu_utilization_ratio{gpu=\"0\",uuid=\"GPU-0\",name=\"NVIDIA A100\"} 0.87\n"
        ));
        // A MIG instance has no utilization or temperature of its own: no sample, not a zero.
        assert!(!text.contains("sysmon_gpu_utilization_ratio{gpu=\"1/mig0\""));
        assert!(text.contains("sysmon_gpu_memory_total_bytes{gpu=\"1/mig0\",uuid=\"MIG-1\""));
        assert!(text.contains("sysmon_gpu_user_memory_bytes{user=\"alice\"} 3221225472\n"));
        assert!(text.contains("sysmon_gpu_user_utilization_ratio{user=\"alice\"} 0.425\n"));
        assert!(!text.contains("sysmon_gpu_user_memory_bytes{user=\"bob\""));
        assert!(text.contains(
            "sysmon_gpu_user_device_memory_bytes{user=\"alice\",gpu=\"0\",uuid=\"GPU-0\"} 2147483648\n"
        ));
        assert!(text.contains(
            "sysmon_gpu_user_device_memory_bytes{user=\"alice\",gpu=\"1/mig0\",uuid=\"MIG-1\"} 1073741824\n"
        ));
        assert_eq!(text.matches("# TYPE sysmon_gpu_power_watts ").count(), 1);
        // alice is under the CPU and memory minimums but followed on the GPU memory she holds.
        assert!(text.contains("sysmon_user_persistent{user=\"alice\",metric=\"gpu_memory\"} 0\n"));
        assert!(!text.contains("sysmon_user_persistent{user=\"alice\",metric=\"cpu\""));
        assert!(!text.contains("sysmon_user_persistent{user=\"bob\""));
    }
}
