//! The binary's own operator commands: `--version` names the commit it was built from when
//! built from a checkout, `intelli completions SHELL` and `intelli man` print what they
//! promise (the contents are checked in `intelli::completions`' unit tests).

use assert_cmd::Command;

fn intelli(args: &[&str]) -> String {
    let out = Command::cargo_bin("intelli")
        .expect("binary")
        .args(args)
        .output()
        .expect("run intelli");
    assert!(
        out.status.success(),
        "intelli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn version_names_the_commit_of_a_checkout() {
    let version = intelli(&["--version"]);
    assert!(
        version.starts_with(&format!("intelli {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let head = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output();
    match head {
        Ok(out) if out.status.success() => {
            let head = String::from_utf8_lossy(&out.stdout);
            assert!(
                version.contains(&format!("(commit {})", &head.trim()[..12])),
                "built from a checkout at {head}: {version}"
            );
        }
        // A tarball: the plain version.
        _ => assert_eq!(
            version.trim(),
            format!("intelli {}", env!("CARGO_PKG_VERSION"))
        ),
    }
}

#[test]
fn completions_and_man_pages_are_printed_and_written() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = intelli(&["completions", shell]);
        assert!(
            script.contains("completions") && script.contains("apply"),
            "{shell}"
        );
    }
    let page = intelli(&["man"]);
    assert!(page.contains(".TH intelli"), "{page}");
    let dir = tempfile::tempdir().expect("tempdir");
    intelli(&["man", "--out-dir", dir.path().to_str().expect("utf-8")]);
    for file in [
        "intelli.1",
        "intelli-plan.1",
        "intelli-apply.1",
        "intelli-completions.1",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} not written");
    }
}
