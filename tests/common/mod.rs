//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod openapi;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "sim")]
pub mod world;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copy a directory tree (small fixtures only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy fixture file");
        }
    }
}

/// A database of its own on the test server, dropped when the value is dropped.
pub struct TempDb {
    pub name: String,
    pub url: String,
    server: String,
}

impl TempDb {
    /// Fails the test with what to do when no server answers.
    pub async fn new(prefix: &str) -> TempDb {
        let server = intelli::pg::server_url();
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() % 1_000_000_000)
                .unwrap_or(0)
        );
        let url = match intelli::pg::create_database(&server, &name).await {
            Ok(url) => url,
            Err(e) => panic!(
                "this test needs PostgreSQL: {e:#}\n\
                 Install it (Debian: apt-get install postgresql) and start it, or set DATABASE_URL; \
                 scripts/test does this for you."
            ),
        };
        TempDb { name, url, server }
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        intelli::pg::connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop from a fresh runtime on another thread: Drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(intelli::pg::drop_database(&server, &name));
            }
        })
        .join();
    }
}
