//! `/proc/<pid>/mounts` (fstab(5) format).

use super::ParseError;

/// One mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MountLine<'a> {
    pub device: &'a str,
    /// The mount point as written, with fstab's octal escapes still in it; see
    /// [`unescape_into`].
    pub mount_point: &'a str,
    pub fs_type: &'a str,
    pub options: &'a str,
}

impl MountLine<'_> {
    /// Whether `ro` is one of the mount options (node_exporter's `node_filesystem_readonly`).
    pub(crate) fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// The mounts in file order; a line with fewer than four fields is an error.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = Result<MountLine<'_>, ParseError>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let mut f = line.split_ascii_whitespace();
            match (f.next(), f.next(), f.next(), f.next()) {
                (Some(device), Some(mount_point), Some(fs_type), Some(options)) => Ok(MountLine {
                    device,
                    mount_point,
                    fs_type,
                    options,
                }),
                _ => Err(ParseError {
                    line: i + 1,
                    reason: "fewer than four fields",
                }),
            }
        })
}

/// Writes `raw` into `out` (cleared first) with `\040` turned into a space and `\011`
/// into a tab: exactly the two escapes node_exporter undoes.
pub(crate) fn unescape_into(raw: &str, out: &mut String) {
    out.clear();
    let mut rest = raw;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(r) = after.strip_prefix("\\040") {
            out.push(' ');
            rest = r;
        } else if let Some(r) = after.strip_prefix("\\011") {
            out.push('\t');
            rest = r;
        } else {
            out.push('\\');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample() {
        let text = include_str!("../../tests/data/proc/1/mounts");
        let all: Vec<MountLine> = lines(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 23);
        assert_eq!(
            all[0],
            MountLine {
                device: "/dev/mapper/vg0-root",
                mount_point: "/",
                fs_type: "ext4",
                options: "rw,relatime,errors=remount-ro"
            }
        );
        assert!(!all[0].read_only());
        let backup = all.iter().find(|m| m.device == "/dev/sda1").unwrap();
        assert!(backup.read_only());
        let mut s = String::new();
        unescape_into(backup.mount_point, &mut s);
        assert_eq!(s, "/srv/backup disk");
    }

    #[test]
    fn unescapes_only_space_and_tab() {
        let mut s = String::from("junk");
        unescape_into(r"/a\040b\011c\134d\", &mut s);
        assert_eq!(s, "/a b\tc\\134d\\");
        unescape_into("/plain", &mut s);
        assert_eq!(s, "/plain");
    }

    #[test]
    fn short_line() {
        assert_eq!(
            lines("a b c\n").next(),
            Some(Err(ParseError {
                line: 1,
                reason: "fewer than four fields"
            }))
        );
    }
}
