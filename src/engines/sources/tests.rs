//! Archive checks, server paths and git sources.
use super::*;

const LIMITS: Limits = Limits {
    max_bytes: 1 << 20,
    max_entries: 100,
};

fn tar_gz(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    build(&mut builder);
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn file_header(path: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    // Written raw: `set_path` itself refuses `..`, which is what the tests need.
    header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header
}

fn check(bytes: &[u8], dest: Option<&Path>) -> Result<Written, SourceError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    fs::write(&path, bytes).unwrap();
    let format = ArchiveFormat::sniff(bytes).unwrap();
    extract(&path, format, dest, LIMITS)
}

#[test]
fn a_plain_tar_gz_extracts() {
    let bytes = tar_gz(|b| {
        let data = b"print('hi')\n";
        b.append(&file_header("src/app.py", data.len() as u64), &data[..])
            .unwrap();
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        b.append_link(&mut link, "src/again.py", "app.py").unwrap();
    });
    let out = tempfile::tempdir().unwrap();
    let written = check(&bytes, Some(out.path())).unwrap();
    assert_eq!(
        written,
        Written {
            files: 1,
            bytes: 12
        }
    );
    assert_eq!(
        fs::read_to_string(out.path().join("src/app.py")).unwrap(),
        "print('hi')\n"
    );
    assert!(
        !out.path().join("src/again.py").exists(),
        "links inside are not created"
    );
}

#[test]
fn traversal_links_out_and_bombs_are_refused() {
    let traversal = tar_gz(|b| {
        b.append(&file_header("../evil.py", 1), &b"x"[..]).unwrap();
    });
    let err = check(&traversal, None).unwrap_err();
    assert!(
        matches!(err, SourceError::Rejected(ref m) if m.contains("unsafe path")),
        "{err}"
    );

    let link_out = tar_gz(|b| {
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        b.append_link(&mut link, "src/passwd", "../../etc/passwd")
            .unwrap();
    });
    let err = check(&link_out, None).unwrap_err();
    assert!(
        matches!(err, SourceError::Rejected(ref m) if m.contains("outside")),
        "{err}"
    );

    let absolute_link = tar_gz(|b| {
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        b.append_link(&mut link, "passwd", "/etc/passwd").unwrap();
    });
    assert!(check(&absolute_link, None).is_err());

    let zeros = vec![0u8; 2 << 20];
    let bomb = tar_gz(|b| {
        b.append(&file_header("zeros", zeros.len() as u64), &zeros[..])
            .unwrap();
    });
    assert!(bomb.len() < 20_000, "{}", bomb.len());
    let err = check(&bomb, None).unwrap_err();
    assert!(
        matches!(err, SourceError::Rejected(ref m) if m.contains("expands")),
        "{err}"
    );
}

#[test]
fn zips_are_checked_the_same_way() {
    type Zip = zip::ZipWriter<io::Cursor<Vec<u8>>>;
    let zip_of = |build: &dyn Fn(&mut Zip)| {
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        build(&mut w);
        w.finish().unwrap().into_inner()
    };
    let options = zip::write::SimpleFileOptions::default();
    let good = zip_of(&|w| {
        w.start_file("a/b.txt", options).unwrap();
        w.write_all(b"hello").unwrap();
    });
    let out = tempfile::tempdir().unwrap();
    assert_eq!(check(&good, Some(out.path())).unwrap().bytes, 5);
    assert_eq!(
        fs::read_to_string(out.path().join("a/b.txt")).unwrap(),
        "hello"
    );

    let traversal = zip_of(&|w| {
        w.start_file("../../x.txt", options).unwrap();
        w.write_all(b"x").unwrap();
    });
    assert!(check(&traversal, None).is_err());
    let link = zip_of(&|w| {
        w.add_symlink("l", "../../../etc", options).unwrap();
    });
    assert!(check(&link, None).is_err());
    let bomb = zip_of(&|w| {
        w.start_file("zeros", options).unwrap();
        w.write_all(&vec![0u8; 2 << 20]).unwrap();
    });
    assert!(check(&bomb, None).is_err());
}

#[test]
fn links_are_judged_from_where_they_are() {
    assert!(check_link(Path::new("a/b/l"), Path::new("../c")).is_ok());
    assert!(check_link(Path::new("a/l"), Path::new("../c")).is_ok());
    assert!(check_link(Path::new("l"), Path::new("../c")).is_err());
    assert!(check_link(Path::new("a/l"), Path::new("/etc")).is_err());
}

#[test]
fn server_paths_stay_under_the_roots() {
    let root = tempfile::tempdir().unwrap();
    let inside = root.path().join("repo");
    fs::create_dir(&inside).unwrap();
    let roots = vec![root.path().to_path_buf()];
    assert!(allowed_dir(inside.to_str().unwrap(), &roots).is_ok());
    let sneaky = format!("{}/../", inside.display());
    let parent_of_root = allowed_dir(&format!("{sneaky}.."), &roots);
    assert!(parent_of_root.is_err());
    assert!(allowed_dir("/etc", &roots).is_err());
    assert!(allowed_dir(inside.to_str().unwrap(), &[]).is_err());
    std::os::unix::fs::symlink("/etc", root.path().join("etc")).unwrap();
    assert!(allowed_dir(root.path().join("etc").to_str().unwrap(), &roots).is_err());
}

#[test]
fn git_urls_are_limited_to_known_schemes() {
    assert!(!check_git_url("https://example.com/r.git").unwrap());
    assert!(check_git_url("/srv/repos/r").unwrap());
    assert!(check_git_url("ext::sh -c id").is_err());
    assert!(check_git_url("--upload-pack=id").is_err());
    assert!(check_git_url("host:path").is_err());
    assert!(check_git_ref("main").is_ok());
    assert!(check_git_ref("--exec").is_err());
}
