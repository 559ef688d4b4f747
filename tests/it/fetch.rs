//! `fetch` against an HTTP server on 127.0.0.1: a good download lands in the store, a wrong
//! digest or a truncated body never does, and the next URL is tried.

use kubemint::fetch::fetch_one;
use kubemint::lock::{Release, store_dir, store_path};
use kubemint::progress::Progress;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// Serves `/good`, `/wrong`, `/truncated` and 404 for anything else, until the test ends.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(32) {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let head = |len: usize| {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
            };
            let _ = match path.as_str() {
                "/good" => stream
                    .write_all(head(body.len()).as_bytes())
                    .and_then(|_| stream.write_all(&body)),
                "/wrong" => {
                    let other = vec![b'x'; body.len()];
                    stream
                        .write_all(head(other.len()).as_bytes())
                        .and_then(|_| stream.write_all(&other))
                }
                "/truncated" => stream
                    .write_all(head(body.len()).as_bytes())
                    .and_then(|_| stream.write_all(&body[..body.len() / 2])),
                _ => stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
    format!("http://{addr}")
}

fn release(body: &[u8], urls: Vec<String>) -> Release {
    Release {
        name: "v0.0.0-test".into(),
        file: "kubernetes-server-linux-amd64.tar.gz".into(),
        sha512: kubemint::hash::sha512_hex(body),
        size: None,
        urls,
        source: None,
    }
}

fn store_files(vendor: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(store_dir(vendor)) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn body() -> Vec<u8> {
    let mut v = Vec::new();
    kubemint::sample::write_release(&mut v, "v0.0.0-test", kubemint::sample::Scale::Tiny).unwrap();
    v
}

#[test]
fn good_download_is_stored_under_its_digest() {
    let body = body();
    let base = serve(body.clone());
    let vendor = tempfile::tempdir().unwrap();
    let r = release(&body, vec![format!("{base}/good")]);
    let f = fetch_one(vendor.path(), &r, &Progress::hidden()).unwrap();
    assert_eq!(f.status, "downloaded");
    assert_eq!(
        std::fs::read(store_path(vendor.path(), &r.sha512)).unwrap(),
        body
    );
    assert_eq!(store_files(vendor.path()), std::slice::from_ref(&r.sha512));
    // A second fetch finds it present and checks it again.
    assert_eq!(
        fetch_one(vendor.path(), &r, &Progress::hidden())
            .unwrap()
            .status,
        "present"
    );
}

#[test]
fn wrong_digest_and_truncation_never_reach_the_store() {
    let body = body();
    let base = serve(body.clone());
    let vendor = tempfile::tempdir().unwrap();
    let r = release(
        &body,
        vec![
            format!("{base}/wrong"),
            format!("{base}/truncated"),
            format!("{base}/nothing"),
        ],
    );
    let err = fetch_one(vendor.path(), &r, &Progress::hidden())
        .unwrap_err()
        .to_string();
    let wrong = kubemint::hash::sha512_hex(&vec![b'x'; body.len()]);
    assert!(
        err.contains(&format!(
            "{base}/wrong: sha512 mismatch: expected {}, actual {wrong}",
            r.sha512
        )),
        "{err}"
    );
    assert!(err.contains(&format!("{base}/truncated:")), "{err}");
    assert!(
        err.contains(&format!("{base}/nothing:")) && err.contains("404"),
        "{err}"
    );
    assert!(
        store_files(vendor.path()).is_empty(),
        "left behind: {:?}",
        store_files(vendor.path())
    );
}

#[test]
fn falls_back_to_the_next_url() {
    let body = body();
    let base = serve(body.clone());
    let vendor = tempfile::tempdir().unwrap();
    let r = release(
        &body,
        vec![format!("{base}/truncated"), format!("{base}/good")],
    );
    let f = fetch_one(vendor.path(), &r, &Progress::hidden()).unwrap();
    assert_eq!(f.url.as_deref(), Some(format!("{base}/good").as_str()));
    assert_eq!(store_files(vendor.path()), [r.sha512]);
}
