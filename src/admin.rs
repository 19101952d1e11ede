//! Commands for admins and scripts that work on the shared database: `status`, `alerts`,
//! `history`, `test-email`. They open the database like any other reader (WAL lets them run
//! beside the daemon), and an acknowledgement or resolution they write is picked up by the
//! daemon on its next tick.

use std::fmt::Write as _;

use serde_json::json;

use crate::app::Failure;
use crate::cli::{AlertAction, HistoryFormat};
use crate::config::Config;
use crate::format;
use crate::json::alerts_json;
use crate::lock::running_daemon;
use crate::model::Timestamp;
use crate::operator;
use crate::store::{History, Store, history_query};
use crate::time::rfc3339;

fn open(config: &Config) -> Result<Store, Failure> {
    let path = config.storage.resolved_path();
    match path.try_exists() {
        Ok(true) => {}
        Ok(false) => {
            return Err(Failure::Runtime(format!(
                "no database at {} (has `sysmon --headless` run with this configuration?)",
                path.display()
            )));
        }
        Err(e) => {
            return Err(Failure::Runtime(format!(
                "cannot reach the database {}: {e} (the daemon can share it with a group: see \
                 the README, \"Sharing the database\")",
                path.display()
            )));
        }
    }
    Store::open(&path).map_err(|e| Failure::Runtime(format!("{}: {e}", path.display())))
}

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(e.to_string())
}

/// `sysmon status`. The database is checked page by page first (`quick_check`): a damaged file
/// is reported and the command exits 1, whatever else could still be read from it.
pub fn status(config: &Config, as_json: bool) -> Result<(), Failure> {
    let path = config.storage.resolved_path();
    let pid = running_daemon(&path);
    let store = open(config)?;
    let damaged = store.quick_check().map_err(runtime)?;
    let damage = |problems: &str| {
        Failure::Runtime(format!(
            "the database {} is damaged: {problems}. Stop sysmon, move the file aside with its \
             -wal and -shm files and start it again (`sqlite3 FILE .recover` reads what is left)",
            path.display()
        ))
    };
    let st = match (store.stats(), &damaged) {
        (Ok(st), _) => st,
        (Err(_), Some(problems)) => return Err(damage(problems)),
        (Err(e), None) => return Err(runtime(e)),
    };
    let now = Timestamp::now();
    let age = st.last_sample.map(|t| now.secs_since(t));
    if as_json {
        let doc = json!({
            "daemon_pid": pid,
            "database": path.display().to_string(),
            "size_bytes": st.db_bytes + st.wal_bytes,
            "schema_version": st.schema_version,
            "last_sample": st.last_sample,
            "samples": st.samples,
            "last_sample_age_secs": age,
            "open_alerts": st.open_alerts,
            "outbox_backlog": st.outbox_backlog,
            "damaged": damaged,
        });
        println!("{doc}");
        return damaged.as_deref().map_or(Ok(()), |p| Err(damage(p)));
    }
    println!(
        "daemon:        {}",
        pid.map_or("not running".to_string(), |p| format!("running (pid {p})"))
    );
    println!(
        "database:      {} ({})",
        path.display(),
        format::bytes(st.db_bytes + st.wal_bytes)
    );
    match (st.last_sample, age) {
        (Some(t), Some(a)) => println!(
            "last sample:   {} ({} ago)",
            rfc3339(t),
            format::duration(a.max(0.0) as u64)
        ),
        _ => println!("last sample:   none"),
    }
    println!("open alerts:   {}", st.open_alerts);
    println!("mail backlog:  {}", st.outbox_backlog);
    damaged.as_deref().map_or(Ok(()), |p| Err(damage(p)))
}

pub fn alerts(
    config: &Config,
    action: Option<AlertAction>,
    all: bool,
    as_json: bool,
) -> Result<(), Failure> {
    let mut store = open(config)?;
    let now = Timestamp::now();
    match action {
        Some(AlertAction::Ack { id }) => {
            if store
                .acknowledge(id, now, &operator::current())
                .map_err(runtime)?
            {
                println!("alert {id} acknowledged");
                Ok(())
            } else {
                Err(Failure::Runtime(format!("no open alert with id {id}")))
            }
        }
        Some(AlertAction::Resolve { id }) => {
            if store
                .resolve(id, now, &operator::current())
                .map_err(runtime)?
            {
                println!("alert {id} resolved");
                Ok(())
            } else {
                Err(Failure::Runtime(format!("no open alert with id {id}")))
            }
        }
        None => {
            let rows = store.alerts(all, 10_000).map_err(runtime)?;
            if as_json {
                let docs = alerts_json(&rows);
                println!("{docs}");
                return Ok(());
            }
            let mut out = format!(
                "{:>6}  {:<8} {:<12} {:>8}  MESSAGE\n",
                "ID", "SEVERITY", "STATE", "AGE"
            );
            for r in &rows {
                let a = &r.alert;
                let _ = writeln!(
                    out,
                    "{:>6}  {:<8} {:<12} {:>8}  {}",
                    r.id,
                    a.severity,
                    format!("{:?}", a.state).to_lowercase(),
                    format::duration(now.secs_since(a.opened_at).max(0.0) as u64),
                    a.message
                );
            }
            if rows.is_empty() {
                out.push_str(if all {
                    "no alerts\n"
                } else {
                    "no open alerts\n"
                });
            }
            print!("{out}");
            Ok(())
        }
    }
}

pub struct HistoryArgs {
    pub since: String,
    pub until: Option<String>,
    pub user: Option<String>,
    pub format: HistoryFormat,
}

pub fn history(config: &Config, args: &HistoryArgs) -> Result<(), Failure> {
    let query = history_query(
        &args.since,
        args.until.as_deref(),
        args.user.clone(),
        Timestamp::now(),
    )
    .map_err(Failure::Usage)?;
    let store = open(config)?;
    let h = store.history(&query).map_err(runtime)?;
    let text = match args.format {
        HistoryFormat::Json => serde_json::to_string(&h).map_err(runtime)? + "\n",
        HistoryFormat::Csv => history_table(&h, args.user.as_deref(), ','),
        HistoryFormat::Table => history_table(&h, args.user.as_deref(), ' '),
    };
    print!("{text}");
    Ok(())
}

pub fn test_email(config: &Config) -> Result<(), Failure> {
    match crate::mail::send_test(config) {
        Ok(line) => {
            println!("{line}");
            Ok(())
        }
        Err(e) => Err(Failure::Runtime(e)),
    }
}

/// History as aligned columns (`sep` = ' ', human units) or CSV (`sep` = ',', plain numbers).
fn history_table(h: &History, user: Option<&str>, sep: char) -> String {
    let csv = sep == ',';
    let mut out = String::new();
    let mut cols = vec![
        "time",
        "cpu_avg",
        "cpu_max",
        "mem_avg",
        "swap_avg",
        "load1",
        "net_rx",
        "net_tx",
        "disk_read",
        "disk_write",
    ];
    if user.is_some() {
        cols.extend(["user_cpu_avg", "user_cpu_max", "user_mem_avg", "user_procs"]);
    }
    // GPU columns only where the range has GPU figures (the user's where they held one).
    let gpu = h.gpu_totals();
    let gpu_cols = [
        "gpu_util_avg",
        "gpu_mem_avg",
        "user_gpu_mem",
        "user_gpu_util",
    ];
    let gpu_cols = &gpu_cols[..match (gpu.is_empty(), h.user_gpu.is_empty()) {
        (true, _) => 0,
        (false, true) => 2,
        (false, false) => 4,
    }];
    if csv {
        out.push_str(&cols.join(","));
        for c in gpu_cols {
            out.push(',');
            out.push_str(c);
        }
        out.push('\n');
    } else {
        let _ = writeln!(
            out,
            "# {} points, {} s each ({:?})",
            h.system.len(),
            h.resolution_secs,
            h.source
        );
        let _ = writeln!(
            out,
            "{:<20} {:>7} {:>7} {:>7} {:>7} {:>6} {:>11} {:>11} {:>11} {:>11}{}",
            cols[0],
            cols[1],
            cols[2],
            cols[3],
            cols[4],
            cols[5],
            cols[6],
            cols[7],
            cols[8],
            cols[9],
            if user.is_some() {
                format!(
                    " {:>12} {:>12} {:>12} {:>10}",
                    cols[10], cols[11], cols[12], cols[13]
                )
            } else {
                String::new()
            } + &gpu_cols
                .iter()
                .map(|c| format!(" {c:>13}"))
                .collect::<String>()
        );
    }
    for (i, p) in h.system.iter().enumerate() {
        let u = h.user.get(i);
        if csv {
            let mut row = vec![
                rfc3339(p.at),
                format!("{:.2}", p.cpu.avg),
                format!("{:.2}", p.cpu.max),
                format!("{:.2}", p.memory.avg),
                format!("{:.2}", p.swap.avg),
                format!("{:.2}", p.load1.avg),
                format!("{:.0}", p.net_rx.avg),
                format!("{:.0}", p.net_tx.avg),
                format!("{:.0}", p.disk_read.avg),
                format!("{:.0}", p.disk_write.avg),
            ];
            if user.is_some() {
                row.extend(match u {
                    Some(u) => vec![
                        format!("{:.2}", u.cpu_percent.avg),
                        format!("{:.2}", u.cpu_percent.max),
                        format!("{:.2}", u.memory_percent.avg),
                        format!("{:.1}", u.processes.avg),
                    ],
                    None => vec![String::new(); 4],
                });
            }
            if let Some(g) = gpu.get(i) {
                row.extend([g.utilization_percent, g.memory_percent].map(|v| format!("{v:.2}")));
            }
            if let Some(g) = h.user_gpu.get(i) {
                row.push(format!("{:.0}", g.memory_bytes.avg));
                row.push(format!("{:.2}", g.utilization_percent.avg));
            }
            out.push_str(&row.join(","));
            out.push('\n');
        } else {
            let _ = write!(
                out,
                "{:<20} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>6.2} {:>11} {:>11} {:>11} {:>11}",
                rfc3339(p.at),
                p.cpu.avg,
                p.cpu.max,
                p.memory.avg,
                p.swap.avg,
                p.load1.avg,
                format::rate(p.net_rx.avg),
                format::rate(p.net_tx.avg),
                format::rate(p.disk_read.avg),
                format::rate(p.disk_write.avg)
            );
            if let Some(u) = u.filter(|_| user.is_some()) {
                let _ = write!(
                    out,
                    " {:>12.1} {:>12.1} {:>12.1} {:>10.1}",
                    u.cpu_percent.avg, u.cpu_percent.max, u.memory_percent.avg, u.processes.avg
                );
            }
            if let Some(g) = gpu.get(i) {
                let _ = write!(
                    out,
                    " {:>13.1} {:>13.1}",
                    g.utilization_percent, g.memory_percent
                );
            }
            if let Some(g) = h.user_gpu.get(i) {
                let _ = write!(
                    out,
                    " {:>13} {:>13.1}",
                    format::bytes(g.memory_bytes.avg.max(0.0) as u64),
                    g.utilization_percent.avg
                );
            }
            out.push('\n');
        }
    }
    if !csv {
        for a in &h.alerts {
            let _ = writeln!(
                out,
                "# alert {} [{}] at {}: {}",
                a.id,
                a.severity,
                rfc3339(a.at),
                a.message
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Agg, GpuPoint, GpuSeries, Resolution, SystemPoint, UserGpuPoint};

    fn flat(v: f64) -> Agg {
        Agg {
            avg: v,
            min: v,
            max: v,
        }
    }

    fn history(gpus: bool) -> History {
        let at = Timestamp(1_700_000_000_000);
        let gpu = |id: &str, util: f64| GpuSeries {
            id: id.into(),
            index: 0,
            mig_parent: None,
            name: "A100".into(),
            points: vec![GpuPoint {
                at,
                samples: 1,
                present: 1,
                utilization_percent: flat(util),
                memory_used_bytes: flat(20.0 * 1024.0 * 1024.0 * 1024.0),
                memory_total_bytes: flat(80.0 * 1024.0 * 1024.0 * 1024.0),
                temperature_celsius: flat(60.0),
                power_watts: flat(300.0),
            }],
        };
        History {
            source: Resolution::Raw,
            resolution_secs: 5,
            system: vec![SystemPoint {
                at,
                samples: 1,
                cpu: flat(50.0),
                memory: flat(40.0),
                swap: flat(0.0),
                load1: flat(1.0),
                net_rx: flat(0.0),
                net_tx: flat(0.0),
                disk_read: flat(0.0),
                disk_write: flat(0.0),
            }],
            user: Vec::new(),
            user_gpu: if gpus {
                vec![UserGpuPoint {
                    at,
                    samples: 1,
                    present: 1,
                    utilization_percent: flat(30.0),
                    memory_percent: flat(12.5),
                    memory_bytes: flat(20.0 * 1024.0 * 1024.0 * 1024.0),
                    processes: flat(1.0),
                }]
            } else {
                Vec::new()
            },
            gpus: if gpus {
                vec![gpu("GPU-a", 100.0), gpu("GPU-b", 20.0)]
            } else {
                Vec::new()
            },
            alerts: Vec::new(),
        }
    }

    #[test]
    fn gpu_columns_only_where_the_range_has_gpus() {
        let plain = history_table(&history(false), None, ',');
        assert!(plain.starts_with("time,cpu_avg,"), "{plain}");
        assert!(!plain.contains("gpu"), "{plain}");
        let csv = history_table(&history(true), Some("alice"), ',');
        let mut lines = csv.lines();
        let head = lines.next().expect("header");
        assert!(
            head.ends_with(",user_procs,gpu_util_avg,gpu_mem_avg,user_gpu_mem,user_gpu_util"),
            "{head}"
        );
        // Two GPUs at 100 % and 20 %, each a quarter full; alice holds 20 GiB at 30 %.
        let row = lines.next().expect("a row");
        assert!(row.ends_with(",60.00,25.00,21474836480,30.00"), "{row}");
        let table = history_table(&history(true), Some("alice"), ' ');
        assert!(
            table.contains("gpu_util_avg") && table.contains("20.0 GiB"),
            "{table}"
        );
    }
}
