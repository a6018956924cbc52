//! A small fleet across network namespaces on this machine — the project's own test hosts,
//! created and removed here, traffic only between them: the frontend and etcd on one host,
//! prefill workers on a second, decode workers on a third, joined by veth pairs on a bridge.
//! Workers find each other's metadata through etcd and move KV blocks over TCP between the
//! namespaces (the namespaces share a kernel, so the library is told `NIXL_RS_TRANSPORT=tcp`
//! instead of using cross-memory attach).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{have, ip, skip};

/// The namespaces and etcd; removed (and killed) on drop.
struct Hosts {
    names: Vec<String>,
    etcd: Option<Child>,
    dir: std::path::PathBuf,
}

impl Drop for Hosts {
    fn drop(&mut self) {
        if let Some(mut e) = self.etcd.take() {
            let _ = e.kill();
            let _ = e.wait();
        }
        for n in &self.names {
            let _ = ip(&["netns", "del", n]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// hub (bridge) + h0, h1, h2 at 10.199.S.1..3.
fn make_hosts(tag: &str, subnet: u32) -> Result<Hosts, String> {
    let dir = std::env::temp_dir().join(format!("disagg-netns-{tag}"));
    let mut hosts = Hosts {
        names: Vec::new(),
        etcd: None,
        dir,
    };
    let hub = format!("{tag}-hub");
    ip(&["netns", "add", &hub])?;
    hosts.names.push(hub.clone());
    ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &hub, "link", "set", "br0", "up"])?;
    for i in 0..3 {
        let ns = format!("{tag}-h{i}");
        ip(&["netns", "add", &ns])?;
        hosts.names.push(ns.clone());
        let (vh, vb) = (format!("vh{i}"), format!("vb{i}"));
        ip(&[
            "link", "add", &vh, "netns", &ns, "type", "veth", "peer", "name", &vb, "netns", &hub,
        ])?;
        ip(&["-n", &hub, "link", "set", &vb, "master", "br0"])?;
        ip(&["-n", &hub, "link", "set", &vb, "up"])?;
        let addr = format!("10.199.{subnet}.{}/24", i + 1);
        ip(&["-n", &ns, "addr", "add", &addr, "dev", &vh])?;
        ip(&["-n", &ns, "link", "set", &vh, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
    }
    Ok(hosts)
}

#[test]
fn fleet_across_network_namespaces_with_etcd_discovery() {
    if !cfg!(feature = "etcd") {
        return skip(
            "etcd-feature",
            "`--discovery etcd` needs disagg's etcd feature (run with --features disagg/etcd)",
        );
    }
    if !test_support::is_root() {
        return skip("root", "network namespaces need root");
    }
    if !have("ip") {
        return skip("ip", "iproute2 (`ip`) is not installed");
    }
    if !have("etcd") {
        return skip("etcd", "etcd is not installed (Debian: etcd-server)");
    }
    let pid = std::process::id();
    let tag = format!("dg{}", pid % 100_000);
    let subnet = pid % 250 + 1;
    let hosts = match make_hosts(&tag, subnet) {
        Ok(h) => h,
        Err(e) => {
            return skip(
                "netns",
                &format!("cannot create network namespaces here: {e}"),
            );
        }
    };
    let net = |i: u32| format!("10.199.{subnet}.{i}");
    let h0 = format!("{tag}-h0");
    let endpoint = format!("http://{}:2379", net(1));
    let mut hosts = hosts;
    let etcd = Command::new("ip")
        .args(["netns", "exec", &h0, "etcd", "--data-dir"])
        .arg(hosts.dir.join("etcd"))
        .args([
            "--listen-client-urls",
            &endpoint,
            "--advertise-client-urls",
            &endpoint,
            "--listen-peer-urls",
            "http://127.0.0.1:2380",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start etcd");
    hosts.etcd = Some(etcd);
    // etcd answers on its client port once ready; probe it from inside h0.
    let start = Instant::now();
    loop {
        let ok = Command::new("ip")
            .args(["netns", "exec", &h0, "bash", "-c"])
            .arg(format!("exec 3<>/dev/tcp/{}/2379", net(1)))
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "etcd did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let netns = format!("{tag}-h1@{},{tag}-h2@{}", net(2), net(3));
    let r = common::run_with(
        &["ip", "netns", "exec", &h0],
        &[
            ("NIXL_ETCD_ENDPOINTS", &endpoint),
            ("NIXL_RS_TRANSPORT", "tcp"),
        ],
        "netns",
        &[
            "--quick",
            "--host",
            &net(1),
            "--discovery",
            "etcd",
            "--worker-netns",
            &netns,
        ],
        180,
    );
    r.assert_sound();
    assert_eq!(r.code, Some(0), "{}", r.output);
    assert_eq!(r.n("failed"), 0, "{}", r.output);
    assert_eq!(r.report["discovery"], "etcd", "{}", r.output);
    assert!(
        r.n("kv_event_batches") > 0,
        "KV events crossed hosts:\n{}",
        r.output
    );
    drop(hosts);
    assert!(
        !String::from_utf8_lossy(
            &Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout
        )
        .contains(&tag),
        "namespaces removed"
    );
}
