//! What several benchmarks share: copying the repository's fixtures into a scratch
//! repository, and dropping the project databases a kept simulator state made. Each bench is
//! its own crate and includes this file with `#[path = "common/mod.rs"] mod common;`.
#![allow(dead_code)] // each bench uses a part

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;

/// Copies the tree `from` into `to`, leaving out entries named in `skip` at any depth
/// (`node_modules`, `dist`).
pub fn copy_dir(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        if skip.iter().any(|s| entry.file_name() == *s) {
            continue;
        }
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &dest, skip);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy file");
        }
    }
}

/// Drops every project database a kept simulator state lists, and the state itself, when it
/// goes out of scope (also when the bench panics).
pub struct DropDatabases(pub PathBuf);

impl Drop for DropDatabases {
    fn drop(&mut self) {
        if !self.0.exists() {
            return;
        }
        let dir = self.0.clone();
        let t = Instant::now();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let server = intelli::pg::server_url();
            rt.block_on(async {
                // A few at a time: after a large setup each DROP DATABASE waits for a
                // checkpoint, and concurrent drops share them (one by one, 1,000 take ~10 min).
                if let Ok(saved) = intelli::sim::supabase::model::load(&dir) {
                    futures::stream::iter(saved.projects.values().map(|p| {
                        let server = server.clone();
                        async move {
                            if let Err(e) = intelli::pg::drop_database(&server, &p.db_name).await {
                                eprintln!("dropping {}: {e:#}", p.db_name);
                            }
                        }
                    }))
                    .buffer_unordered(4)
                    .collect::<Vec<()>>()
                    .await;
                }
                // Then the state files (and anything the above missed).
                match intelli::sim::supabase::destroy_saved_state(&dir, &server).await {
                    Ok(k) => println!(
                        "dropped {k} project databases in {:.1}s",
                        t.elapsed().as_secs_f64()
                    ),
                    Err(e) => eprintln!("dropping the project databases: {e:#}"),
                }
            })
        })
        .join();
    }
}
