//! The sample release's stand-ins behave like what they stand in for, as systemd and a health
//! probe see them. Each is run here as its unit would run it, outside systemd (systemd is not
//! PID 1 where the suite runs, so `systemd-run` with the units' sandbox is not tried), with the
//! flags the seed profile's rendered unit gives, its files moved into a temporary directory and
//! its port a free one: with every file in place it answers /healthz, /livez and /readyz over
//! TLS (the apiserver with a serving certificate the test's CA signed); an unknown flag, a missing
//! file or one it may not read stops it with exit 1, naming the flag or file; the apiserver sends
//! READY=1 from its main process, as systemd's NotifyAccess=exec requires; kubectl opens what the
//! addons unit names.

use crate::support::{is_root, repo, require_tool, text};
use kubemint::front::{self, Master, Request, Selection};
use kubemint::inputs::{sample, standin};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const COMPONENTS: [&str; 3] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// master-1 as planned for the sample release, with its files and secrets in a temporary
/// directory: `bin/` (the sample release's executables), `ssl/` (the secrets; a real CA,
/// serving certificate and key, placeholders for the rest), `conf/` (the rendered files of the
/// configuration directory), `logs/`, `tmp/` (the stand-ins' `$TMPDIR`).
struct Master1 {
    dir: tempfile::TempDir,
    master: Master,
}

impl Master1 {
    fn new() -> Master1 {
        require_tool("openssl");
        let root = repo();
        let planned = front::plan_set(&Request {
            root: root.clone(),
            profiles_dir: root.join("profiles"),
            selection: Selection::Names(vec!["master-1".into()]),
            release: None,
            sample: true,
            epoch: None,
        })
        .unwrap();
        let master = planned.masters.into_iter().next().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = Master1 { dir, master };
        for sub in ["bin", "ssl", "conf", "logs", "tmp"] {
            std::fs::create_dir(d.path().join(sub)).unwrap();
        }
        // The executables, out of the very tarball a sample build reads.
        let mut tarball = Vec::new();
        sample::write_release(
            &mut tarball,
            &d.master.plan.release.name,
            sample::Scale::Tiny,
        )
        .unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&tarball[..]));
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let Some(name) = path.strip_prefix("kubernetes/server/bin/") else {
                continue;
            };
            if !name.is_empty() && !name.contains('.') {
                let to = d.path().join("bin").join(name);
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                std::fs::write(&to, bytes).unwrap();
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        // The configuration directory's rendered files (kubeconfigs, the scheduler's
        // configuration, the audit policy, the addons), their paths moved too.
        let conf = d.master.profile.paths.conf_dir.to_string();
        for f in &d.master.plan.files {
            if let Some(rel) = f.path.strip_prefix(&format!("{conf}/")) {
                let to = d.path().join("conf").join(rel);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::write(to, d.moved(&f.content)).unwrap();
            }
        }
        // Every secret: readable placeholders, and a real CA with a serving certificate for
        // 127.0.0.1 where the apiserver serves TLS with them.
        for s in &d.master.plan.secrets {
            let name = s.path.rsplit('/').next().unwrap();
            std::fs::write(d.ssl(name), format!("KUBEMINT-TEST-SECRET {name}\n")).unwrap();
        }
        let ssl = d.path().join("ssl");
        openssl(
            &ssl,
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
             -subj /CN=kubernetes -keyout ca-key.pem -out ca.pem",
        );
        openssl(
            &ssl,
            "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -subj /CN=kubernetes -keyout kubernetes-key.pem -out kubernetes.csr",
        );
        std::fs::write(
            ssl.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        openssl(
            &ssl,
            "x509 -req -in kubernetes.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
             -days 1 -extfile san.ext -out kubernetes.pem",
        );
        d
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn ssl(&self, name: &str) -> PathBuf {
        self.path().join("ssl").join(name)
    }

    /// `text` with the master's certificate, configuration and log directories moved into the
    /// temporary directory.
    fn moved(&self, text: &str) -> String {
        let p = &self.master.profile.paths;
        let d = self.path().display();
        text.replace(&p.cert_dir.to_string(), &format!("{d}/ssl"))
            .replace(&p.conf_dir.to_string(), &format!("{d}/conf"))
            .replace(&p.log_dir.to_string(), &format!("{d}/logs"))
    }

    /// The unit's flags of `component` (as its rendered unit passes them), moved, with the
    /// secure port `port` on loopback.
    fn flags(&self, component: &str, port: u16) -> Vec<String> {
        let unit = self
            .master
            .plan
            .files
            .iter()
            .find(|f| f.path == format!("/usr/lib/systemd/system/{component}.service"))
            .unwrap();
        let mut out: Vec<String> = self.master.profile.components[component]
            .flags
            .iter()
            .map(|f| format!("--{}={}", f.name, f.value))
            .inspect(|f| assert!(unit.content.contains(f.as_str()), "{component}: {f}"))
            .map(|f| self.moved(&f))
            .collect();
        for (flag, value) in [
            ("secure-port", port.to_string()),
            ("bind-address", "127.0.0.1".into()),
        ] {
            let prefix = format!("--{flag}=");
            out.retain(|f| !f.starts_with(&prefix));
            out.push(format!("{prefix}{value}"));
        }
        out
    }

    /// The stand-in `name` with `args`, as `user` (this process's user when `None`), its
    /// temporary files in `<dir>/tmp`, outside systemd.
    fn command(&self, name: &str, args: &[String], user: Option<&str>) -> Command {
        let bin = self.path().join("bin").join(name);
        let mut cmd = match user {
            None => Command::new(bin),
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={user}"))
                    .args(["--regid=nogroup", "--clear-groups", "--"])
                    .arg(bin);
                c
            }
        };
        cmd.args(args)
            .env("TMPDIR", self.path().join("tmp"))
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a stand-in that must stop by itself, within seconds.
    fn run(&self, name: &str, args: &[String]) -> Output {
        self.run_as(name, args, None)
    }

    fn run_as(&self, name: &str, args: &[String], user: Option<&str>) -> Output {
        let mut child = self
            .command(name, args, user)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{name} did not stop by itself");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    /// Starts a stand-in that serves; its stderr goes to `<dir>/<name>.err`.
    fn start(
        &self,
        name: &str,
        args: &[String],
        user: Option<&str>,
        env: &[(&str, &Path)],
    ) -> Server {
        let err = std::fs::File::create(self.path().join(format!("{name}.err"))).unwrap();
        let mut cmd = self.command(name, args, user);
        cmd.stdout(Stdio::null()).stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server {
            child: cmd.spawn().unwrap(),
        }
    }

    fn stderr_of(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(format!("{name}.err"))).unwrap_or_default()
    }

    /// Lets another user reach and read what the apiserver reads, and write its `$TMPDIR`.
    fn open_to_others(&self) {
        let mode = |p: PathBuf, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        for dir in ["", "bin", "ssl", "conf"] {
            mode(self.path().join(dir), 0o755);
        }
        mode(self.path().join("tmp"), 0o1777);
        for f in ["kubernetes-key.pem", "ca-key.pem"] {
            mode(self.ssl(f), 0o644);
        }
    }
}

fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        text(&out.stderr)
    );
}

/// A free TCP port on loopback (high, chosen by the kernel).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running stand-in, stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
}

impl Server {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM, as systemd stops a unit; the exit status.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        signal(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                self.child.kill().unwrap();
                panic!("{} ignored SIGTERM", self.pid());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            signal(self.pid(), libc::SIGTERM);
            std::thread::sleep(Duration::from_millis(200));
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a PID this test started and has not reaped.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// GET `path` over TLS from 127.0.0.1:`port`: the body, if the request got an answer. With `ca`,
/// the server's certificate must verify against it, for the IP address 127.0.0.1.
pub(crate) fn get(port: u16, path: &str, ca: Option<&Path>) -> Option<String> {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-quiet", "-connect"])
        .arg(format!("127.0.0.1:{port}"));
    if let Some(ca) = ca {
        cmd.arg("-CAfile")
            .arg(ca)
            .args(["-verify_return_error", "-verify_ip", "127.0.0.1"]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let response = text(&out.stdout);
    let (head, body) = response.split_once("\r\n\r\n")?;
    (out.status.success() && head.starts_with("HTTP/1.0 200")).then(|| body.to_owned())
}

/// Waits until `server` answers `path` with "ok"; panics with its stderr if it stops first or
/// does not answer within 20 s.
pub(crate) fn answers(
    server: &mut Server,
    stderr: impl Fn() -> String,
    port: u16,
    path: &str,
    ca: Option<&Path>,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if get(port, path, ca).as_deref() == Some("ok") {
            return;
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("stopped ({status}) before answering {path}:\n{}", stderr());
        }
        assert!(
            Instant::now() < deadline,
            "no answer at {path}:\n{}",
            stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn each_component_answers_its_health_probes_with_the_unit_s_flags() {
    let m = Master1::new();
    let ca = m.ssl("ca.pem");
    for name in COMPONENTS {
        let port = free_port();
        let mut server = m.start(name, &m.flags(name, port), None, &[]);
        // The apiserver serves the delivered certificate, which verifies against the CA for
        // 127.0.0.1; the others a self-signed one made at start.
        let ca = (name == "kube-apiserver").then_some(ca.as_path());
        for path in ["/healthz", "/readyz", "/livez"] {
            answers(&mut server, || m.stderr_of(name), port, path, ca);
        }
        if name != "kube-apiserver" {
            // Not the test CA's: a certificate of its own.
            assert_eq!(
                get(port, "/healthz", Some(&m.ssl("ca.pem"))),
                None,
                "{name}"
            );
        }
        assert!(!entries(&m.path().join("tmp")).is_empty());
        // Stopped as systemd stops it: exit 0, its temporary directory gone.
        let status = server.stop();
        assert!(status.success(), "{name}: {status}\n{}", m.stderr_of(name));
        assert_eq!(
            entries(&m.path().join("tmp")),
            Vec::<String>::new(),
            "{name}"
        );
        assert!(get(port, "/healthz", None).is_none(), "{name} still serves");
    }
}

#[test]
fn an_unknown_flag_stops_each_component_naming_it() {
    let m = Master1::new();
    for name in COMPONENTS {
        let mut flags = m.flags(name, free_port());
        flags.insert(2, "--no-such-flag=1".into());
        let out = m.run(name, &flags);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(
            text(&out.stderr),
            "Error: unknown flag: --no-such-flag\n",
            "{name}"
        );
        // A value-less flag the same.
        let out = m.run(name, &["--no-such-flag".into()]);
        assert_eq!(
            text(&out.stderr),
            "Error: unknown flag: --no-such-flag\n",
            "{name}"
        );
    }
    // Known is what the release knows: --authorization-config arrived in v1.29.
    let out = m.run(
        "kube-apiserver",
        &["--authorization-config=/etc/authz.yaml".into()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: unknown flag: --authorization-config\n"
    );
    // v1.33.5's apiserver has no --insecure-port (removed in v1.24); v1.14.2's has.
    let newer = m.path().join("bin/kube-apiserver-v1.33.5");
    std::fs::write(
        &newer,
        standin::executable("kube-apiserver", "v1.33.5").unwrap(),
    )
    .unwrap();
    let out = Command::new("sh")
        .arg(&newer)
        .arg("--insecure-port=0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "Error: unknown flag: --insecure-port\n");
    let out = m.run("kube-apiserver", &["--version".into()]);
    assert_eq!(text(&out.stdout), "Kubernetes v1.14.2\n");
}

#[test]
fn a_missing_or_unreadable_file_stops_each_component_naming_it() {
    let m = Master1::new();
    // A key named by a flag of the apiserver and of the controller manager; the scheduler's is
    // named only in the kubeconfig that its configuration file names.
    for (name, secret) in [
        ("kube-apiserver", "kubernetes-key.pem"),
        ("kube-controller-manager", "sa.key"),
        ("kube-scheduler", "kube-scheduler-key.pem"),
    ] {
        let path = m.ssl(secret);
        let saved = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let out = m.run(name, &m.flags(name, free_port()));
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(
            text(&out.stderr),
            format!(
                "Error: open {}: no such file or directory\n",
                path.display()
            ),
            "{name}"
        );
        std::fs::write(&path, saved).unwrap();
    }
    // A key the unit's user may not read, as the real one reports it. Needs another user.
    if !is_root() {
        return;
    }
    m.open_to_others();
    let key = m.ssl("kubernetes-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = m.run_as(
        "kube-apiserver",
        &m.flags("kube-apiserver", free_port()),
        Some("nobody"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!("Error: open {}: permission denied\n", key.display())
    );
}

/// A stand-in for systemd's notification socket: every datagram with the PID the kernel vouches
/// for (SCM_CREDENTIALS), barriers answered (their file descriptor closed) as systemd does.
struct NotifySocket {
    path: PathBuf,
    messages: std::sync::mpsc::Receiver<(i32, String)>,
}

impl NotifySocket {
    fn bind(path: PathBuf) -> NotifySocket {
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let on: libc::c_int = 1;
        // SAFETY: setsockopt on a socket this test owns, with a correctly sized int.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (tx, messages) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            while let Some(m) = receive(&socket) {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        NotifySocket { path, messages }
    }

    /// The next message within `timeout`.
    fn next(&self, timeout: Duration) -> Option<(i32, String)> {
        self.messages.recv_timeout(timeout).ok()
    }
}

/// One datagram: the sender's PID and the text (empty after 200 ms without one); `None` if
/// the socket fails. Passed file descriptors (a barrier's) are closed at once.
fn receive(socket: &std::os::unix::net::UnixDatagram) -> Option<(i32, String)> {
    {
        let mut buf = [0u8; 4096];
        let mut control = [0u64; 64];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is zeroed and then points at live buffers of the sizes given.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: recvmsg into the buffers above.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                // Nothing yet: an empty message, so that the thread sees when nobody listens.
                return Some((0, String::new()));
            }
            return None;
        }
        let mut pid = 0;
        // SAFETY: walking the control messages the kernel wrote, with the libc macros.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let data = libc::CMSG_DATA(c);
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                    pid = (*(data as *const libc::ucred)).pid;
                }
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                        / std::mem::size_of::<libc::c_int>();
                    for i in 0..count {
                        libc::close(*(data as *const libc::c_int).add(i));
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Some((
            pid,
            String::from_utf8_lossy(&buf[..n as usize]).into_owned(),
        ))
    }
}

/// The main PID systemd would take from `messages`: the sender of READY=1, or the MAINPID= it
/// names. Panics unless READY=1 comes from `main` (NotifyAccess=exec and =main accept nothing
/// else).
fn ready_from(socket: &NotifySocket, main: i32, stderr: impl Fn() -> String) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Some((pid, message)) = socket.next(Duration::from_millis(200)) else {
            continue;
        };
        if !message.lines().any(|l| l == "READY=1") {
            continue;
        }
        assert_eq!(
            pid, main,
            "READY=1 came from PID {pid}, not the main process {main}: systemd refuses it\n{message}"
        );
        return message
            .lines()
            .find_map(|l| l.strip_prefix("MAINPID="))
            .map_or(main, |p| p.parse().unwrap());
    }
    panic!("no READY=1 within 20 s:\n{}", stderr());
}

#[test]
fn the_apiserver_tells_systemd_it_is_ready_from_its_main_process() {
    require_tool("systemd-notify");
    let m = Master1::new();
    // Root first: systemd-notify signs a message for another PID when it may, and must not
    // here; then the unit's case, a user without privileges.
    let users: &[Option<&str>] = if is_root() {
        m.open_to_others();
        &[None, Some("nobody")]
    } else {
        &[None]
    };
    for (i, user) in users.iter().enumerate() {
        let socket = NotifySocket::bind(m.path().join(format!("notify-{i}.sock")));
        let port = free_port();
        let flags = m.flags("kube-apiserver", port);
        let mut server = m.start(
            "kube-apiserver",
            &flags,
            *user,
            &[("NOTIFY_SOCKET", &socket.path)],
        );
        let main = server.pid();
        let new_main = ready_from(&socket, main, || m.stderr_of("kube-apiserver"));
        // Ready means serving, from the process systemd now watches: the server itself (the
        // main process became it, or handed its place over to it).
        answers(
            &mut server,
            || m.stderr_of("kube-apiserver"),
            port,
            "/readyz",
            Some(&m.ssl("ca.pem")),
        );
        let comm = std::fs::read_to_string(format!("/proc/{new_main}/comm")).unwrap();
        assert_eq!(comm.trim(), "openssl", "{user:?}: main PID {new_main}");
        signal(new_main, libc::SIGTERM);
        drop(server);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{new_main}")).exists() {
            // Reaped by whoever is its parent now; a zombie is gone enough.
            let stat =
                std::fs::read_to_string(format!("/proc/{new_main}/stat")).unwrap_or_default();
            if stat.contains(") Z ") || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn kubectl_applies_what_the_addons_unit_names() {
    let m = Master1::new();
    let unit = m
        .master
        .plan
        .files
        .iter()
        .find(|f| f.path == "/usr/lib/systemd/system/kubemint-addons.service")
        .unwrap();
    let line = unit
        .content
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .find(|l| l.contains("/kubectl "))
        .unwrap();
    let args: Vec<String> = m
        .moved(line)
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect();
    assert!(args.iter().any(|a| a == "apply"), "{args:?}");
    let out = m.run("kubectl", &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("kube-apiserver-kubelet-apis.yaml: applied"),
        "{}",
        text(&out.stdout)
    );
    // The admin key, named in the kubeconfig, missing: exit 1, named.
    let key = m.ssl("admin-key.pem");
    std::fs::remove_file(&key).unwrap();
    let out = m.run("kubectl", &args);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("error: open {}: no such file or directory\n", key.display())
    );
}

#[test]
fn every_stand_in_passes_shellcheck() {
    require_tool("shellcheck");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for release in ["v1.14.2", "v1.33.5"] {
        for name in COMPONENTS.iter().chain(&["kubectl", "kubelet"]) {
            let path = dir.path().join(format!("{name}-{release}"));
            std::fs::write(&path, standin::executable(name, release).unwrap()).unwrap();
            files.push(path);
        }
    }
    let out = Command::new("shellcheck")
        .args(["-s", "sh"])
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
}
