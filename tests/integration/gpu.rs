//! GPU clients found by the real collector on fixture /proc and /sys trees.

use std::collections::HashMap;
use std::fs;

use sysmon::collect::fixture::{FakeProc, FakeProcess, FakeSystem};
use sysmon::collect::gpu::GpuClientKind;
use sysmon::collect::gpu::nvml::{NvmlDevice, NvmlProcess, NvmlUtilSample, Recorded};
use sysmon::collect::{Collector, CollectorOptions, RawSample, StaticUsers};
use sysmon::model::Timestamp;

const AMDGPU: &str = include_str!("../../src/collect/gpu/fixtures/amdgpu.fdinfo");
const I915: &str = include_str!("../../src/collect/gpu/fixtures/i915.fdinfo");

struct Rig {
    _dir: tempfile::TempDir,
    fake: FakeProc,
    collector: Collector,
}

fn users() -> StaticUsers {
    StaticUsers(HashMap::from([
        (1001, "alice".to_string()),
        (1002, "bob".to_string()),
    ]))
}

/// An amdgpu card and an Intel iGPU; alice runs a job with two descriptors on one DRM file and
/// a child that inherited it, bob a desktop on the iGPU and a shell holding no GPU.
fn rig(rescan_every: u64) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeProc::create(dir.path(), &FakeSystem::default()).expect("fixture");
    let amd = fake
        .add_drm_device(1, "0000:03:00.0", "amdgpu")
        .expect("amd");
    fs::write(amd.join("gpu_busy_percent"), "42\n").unwrap();
    fs::write(amd.join("mem_info_vram_total"), "8589934592\n").unwrap();
    fs::write(amd.join("mem_info_vram_used"), "1073741824\n").unwrap();
    fs::create_dir_all(amd.join("hwmon/hwmon3")).unwrap();
    fs::write(amd.join("hwmon/hwmon3/temp1_input"), "55000\n").unwrap();
    fs::write(amd.join("hwmon/hwmon3/power1_average"), "120000000\n").unwrap();
    fake.add_drm_device(0, "0000:00:02.0", "i915")
        .expect("intel");
    for p in [
        FakeProcess::new(2001, 1001, "train"),
        FakeProcess::new(2002, 1001, "train-worker"),
        FakeProcess::new(2003, 1002, "Xorg"),
        FakeProcess::new(2004, 1002, "bash"),
    ] {
        fake.add_process(&p).expect("add");
    }
    fake.add_fd(2001, 0, "/dev/null", "pos:\t0\n").unwrap();
    fake.add_fd(2001, 5, "/dev/dri/renderD129", AMDGPU).unwrap();
    fake.add_fd(2001, 6, "/dev/dri/renderD129", AMDGPU).unwrap();
    fake.add_fd(2002, 5, "/dev/dri/renderD129", AMDGPU).unwrap();
    fake.add_fd(2003, 9, "/dev/dri/card0", I915).unwrap();
    fake.add_fd(2004, 0, "/dev/pts/3", "pos:\t0\n").unwrap();
    fake.add_fd(2004, 3, "socket:[12345]", "pos:\t0\n").unwrap();
    let mut opts = CollectorOptions::fixture(dir.path(), vec![]);
    opts.gpu.fdinfo_rescan_every = rescan_every;
    let collector = Collector::new(opts, Box::new(users())).expect("collector");
    Rig {
        _dir: dir,
        fake,
        collector,
    }
}

impl Rig {
    fn sample(&mut self, secs: i64) -> RawSample {
        self.collector
            .sample(Timestamp::from_secs(secs))
            .expect("sample")
    }
}

#[test]
fn drm_devices_and_clients_with_one_client_counted_once() {
    let mut r = rig(30);
    let s = r.sample(1);
    let devs: Vec<(u32, &str, &str)> = s
        .gpu
        .devices
        .iter()
        .map(|d| (d.index, &*d.id, &*d.driver))
        .collect();
    assert_eq!(
        devs,
        [
            (0, "drm:0000:00:02.0", "i915"),
            (1, "drm:0000:03:00.0", "amdgpu")
        ]
    );
    let amd = &s.gpu.devices[1];
    assert_eq!(amd.utilization_percent, Some(42.0));
    assert_eq!(amd.memory_total_bytes, Some(8 << 30));
    assert_eq!(amd.memory_used_bytes, Some(1 << 30));
    assert_eq!(amd.temperature_celsius, Some(55.0));
    assert_eq!(amd.power_watts, Some(120.0));
    let clients: Vec<(u32, &str, Option<u64>, Option<u64>)> = s
        .gpu
        .clients
        .iter()
        .map(|c| (c.pid, &*c.device, c.drm_client, c.memory_bytes))
        .collect();
    // Three descriptors in two processes share amdgpu client 17: one client, the lowest pid's.
    assert_eq!(
        clients,
        [
            (2001, "drm:0000:03:00.0", Some(17), Some(3292 * 1024)),
            (2003, "drm:0000:00:02.0", Some(7), Some(8192 * 1024)),
        ]
    );
    assert!(s.gpu.clients.iter().all(|c| c.kind == GpuClientKind::Drm));
    assert_eq!(s.gpu.clients[0].start_ticks, 1000 + 2001);
}

#[test]
fn only_new_processes_and_known_clients_are_looked_at_between_rescans() {
    let mut r = rig(3);
    r.sample(1);
    let c1 = r.collector.drm_scan_cost().expect("watching DRM");
    // The first refresh looks at all four processes, reading a link per descriptor.
    assert_eq!((c1.fd_dirs, c1.links), (4, 7));
    assert_eq!(c1.fdinfos, 4);

    // Then only the clients (2001, 2002 which shares 2001's file, 2003) and a newcomer.
    r.fake
        .add_process(&FakeProcess::new(2005, 1002, "vim"))
        .unwrap();
    r.sample(2);
    let c2 = r.collector.drm_scan_cost().unwrap();
    assert_eq!(c2.fd_dirs - c1.fd_dirs, 4);

    // bob's shell opens the GPU long after it started: invisible until the full rescan.
    r.fake
        .add_fd(
            2004,
            7,
            "/dev/dri/renderD129",
            &AMDGPU.replace("\t17\n", "\t99\n"),
        )
        .unwrap();
    let s3 = r.sample(3);
    assert!(!s3.gpu.clients.iter().any(|c| c.pid == 2004));
    let c3 = r.collector.drm_scan_cost().unwrap();
    assert_eq!(c3.fd_dirs - c2.fd_dirs, 3);
    let s4 = r.sample(4);
    assert!(
        s4.gpu
            .clients
            .iter()
            .any(|c| c.pid == 2004 && c.drm_client == Some(99))
    );
    let c4 = r.collector.drm_scan_cost().unwrap();
    assert_eq!(c4.fd_dirs - c3.fd_dirs, 5);
}

#[test]
fn a_client_that_exits_or_closes_its_file_is_gone() {
    let mut r = rig(30);
    r.sample(1);
    r.fake.remove_process(2003).unwrap();
    fs::remove_file(r.fake.root().join("2001/fd/5")).unwrap();
    fs::remove_file(r.fake.root().join("2001/fd/6")).unwrap();
    let s = r.sample(2);
    let pids: Vec<u32> = s.gpu.clients.iter().map(|c| c.pid).collect();
    // 2002 still holds client 17.
    assert_eq!(pids, [2002]);
}

#[test]
fn no_drm_device_means_no_scanner_and_no_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeProc::create(dir.path(), &FakeSystem::default()).unwrap();
    fake.add_process(&FakeProcess::new(2001, 1001, "train"))
        .unwrap();
    fake.add_fd(2001, 5, "/dev/dri/renderD128", AMDGPU).unwrap();
    let opts = CollectorOptions::fixture(dir.path(), vec![]);
    let mut c = Collector::new(opts, Box::new(users())).unwrap();
    let s = c.sample(Timestamp::from_secs(1)).unwrap();
    assert!(s.gpu.is_empty());
    assert_eq!(c.drm_scan_cost(), None);

    // NVIDIA's DRM node (NVML's job, not fdinfo's) and a VM's virtual display are no GPUs here.
    fake.add_drm_device(0, "0000:41:00.0", "nvidia").unwrap();
    fake.add_drm_device(1, "0000:00:01.0", "virtio_gpu")
        .unwrap();
    let opts = CollectorOptions::fixture(dir.path(), vec![]);
    let mut c = Collector::new(opts, Box::new(users())).unwrap();
    assert_eq!(c.drm_scan_cost(), None);
    assert!(c.sample(Timestamp::from_secs(2)).unwrap().gpu.is_empty());
}

/// Recorded NVML answers through the real collector, derive, `--json` and `/metrics`: the
/// per-user figures, the device, and an exposition that passes the strict reader.
#[test]
fn nvml_answers_reach_json_and_metrics_per_user() {
    const GIB: u64 = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeProc::create(dir.path(), &FakeSystem::default()).unwrap();
    fake.add_process(&FakeProcess::new(100, 1001, "train"))
        .unwrap();
    fake.add_process(&FakeProcess::new(200, 1002, "Xorg"))
        .unwrap();
    let opts = CollectorOptions::fixture(dir.path(), vec![]);
    let mut c = Collector::new(opts, Box::new(users())).unwrap();
    c.set_nvml(Box::new(Recorded(vec![NvmlDevice {
        index: 0,
        name: Some("NVIDIA H100 80GB HBM3".into()),
        uuid: Some("GPU-5d1c".into()),
        utilization_percent: Some(91),
        memory: Some((22 * GIB, 80 * GIB)),
        temperature_celsius: Some(58),
        power_milliwatts: Some(402_000),
        compute: vec![NvmlProcess {
            pid: 100,
            used_bytes: Some(20 * GIB),
        }],
        graphics: vec![NvmlProcess {
            pid: 200,
            used_bytes: Some(GIB),
        }],
        samples: vec![NvmlUtilSample {
            pid: 100,
            timestamp_us: 1,
            sm_percent: 85,
        }],
        mig: vec![],
    }])));
    let prev = c.sample(Timestamp::from_secs(1)).unwrap();
    let cur = c.sample(Timestamp::from_secs(3)).unwrap();
    let snap = sysmon::derive::derive(&prev, &cur, &crate::collector::all_users());

    let doc: serde_json::Value = serde_json::from_str(&sysmon::json::snapshot(
        &snap,
        &sysmon::model::StatusReport::default(),
    ))
    .unwrap();
    let user = |name: &str| {
        doc["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .unwrap()
            .clone()
    };
    let alice = user("alice");
    assert_eq!(alice["gpu"]["memory_bytes"], 20 * GIB);
    assert_eq!(alice["gpu"]["memory_percent"], 25.0);
    assert_eq!(alice["gpu"]["utilization_percent"], 85.0);
    assert_eq!(alice["gpu"]["device_ids"][0], "GPU-5d1c");
    assert_eq!(user("bob")["gpu"]["memory_bytes"], GIB);
    let device_memory = doc["gpu"]["devices"][0]["memory_percent"].as_f64().unwrap();
    assert!((device_memory - 27.5).abs() < 1e-9, "{device_memory}");
    assert_eq!(doc["gpu"]["processes"][1]["user"], "bob");
    assert_eq!(doc["gpu"]["processes"][1]["kind"], "graphics");
    // The published schema describes the GPU fields (checked with no field left unnamed).
    crate::schema::assert_valid(&doc);

    let latest = sysmon::http::Latest {
        snapshot: snap,
        status: Default::default(),
        status_json: "{}".into(),
        open_by_severity: [0; 4],
        persistent: Vec::new(),
        sampled: std::time::Instant::now(),
    };
    let text = sysmon::http::metrics::render(
        Some(&latest),
        &Default::default(),
        std::time::Instant::now(),
    );
    let families = crate::http::parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let value = |family: &str, label: &str, want: &str| {
        families[family]
            .samples
            .iter()
            .find(|(l, _)| l.get(label).map(String::as_str) == Some(want))
            .map(|(_, v)| *v)
    };
    assert_eq!(
        value("sysmon_gpu_user_memory_bytes", "user", "alice"),
        Some((20 * GIB) as f64)
    );
    assert_eq!(
        value("sysmon_gpu_utilization_ratio", "uuid", "GPU-5d1c"),
        Some(0.91)
    );
    assert_eq!(value("sysmon_gpu_power_watts", "gpu", "0"), Some(402.0));
    assert_eq!(
        value("sysmon_gpu_user_device_memory_bytes", "user", "bob"),
        Some(GIB as f64)
    );
}

/// The engine every front end runs (the real collector on the fixture tree, derive, track) with
/// the amdgpu card at 1 % busy while alice's job holds VRAM on it: "held idle" opens once
/// `gpu_idle_minutes` have passed, names the card and the memory, and recovers when the card
/// gets busy.
#[test]
fn a_card_held_idle_raises_a_held_idle_alert_that_clears_when_it_gets_busy() {
    use sysmon::config::Config;
    use sysmon::engine::Engine;
    use sysmon::model::{AlertKey, Event};

    let Rig {
        _dir,
        fake,
        collector,
    } = rig(30);
    let busy = fake
        .root()
        .join("sys/devices/pci0000:00/0000:03:00.0/gpu_busy_percent");
    fs::write(&busy, "1\n").unwrap();
    let mut config = Config::default();
    config.monitoring.interval_secs = 60;
    config.users.gpu_idle_minutes = 10;
    let mut engine = Engine::new(config, collector);
    let mut tick = |minute: i64| -> Vec<Event> {
        engine
            .tick(Timestamp::from_secs(minute * 60))
            .expect("tick")
            .map(|t| t.events)
            .unwrap_or_default()
    };
    let opened = |events: &[Event]| -> Vec<(String, String)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::AlertOpened(a) => Some((a.key.to_string(), a.message.clone())),
                _ => None,
            })
            .collect()
    };
    let alice = AlertKey::gpu_idle("alice").to_string();
    // The first tick only primes the counters; the clock starts at the second (minute 1).
    for minute in 0..=10 {
        let events = tick(minute);
        assert!(
            !opened(&events).iter().any(|(k, _)| *k == alice),
            "minute {minute}: {events:?}"
        );
    }
    let at_11 = opened(&tick(11));
    assert!(
        at_11.contains(&(
            alice.clone(),
            "user alice holds 3.2 MiB on idle GPU 1 (under 5% busy for 10m)".to_string()
        )),
        "{at_11:?}"
    );

    fs::write(&busy, "60\n").unwrap();
    let recovered: Vec<String> = tick(12)
        .iter()
        .filter_map(|e| match e {
            Event::Recovery(a) if a.key.to_string() == alice => Some(a.message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        recovered,
        ["user alice idle GPU recovered: busy again, 60.0% (idle under 5%)"]
    );
}
