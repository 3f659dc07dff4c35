//! node_exporter's default exclusions, as plain string matching instead of regexps.
//! Each function states the regexp it reproduces; the tests check it case by case.

/// `--collector.filesystem.fs-types-exclude` default (node_exporter 1.8+):
/// `^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$`
pub(crate) fn fs_type_excluded(fs_type: &str) -> bool {
    matches!(
        fs_type,
        "autofs"
            | "binfmt_misc"
            | "bpf"
            | "cgroup"
            | "cgroup2"
            | "configfs"
            | "debugfs"
            | "devpts"
            | "devtmpfs"
            | "fusectl"
            | "hugetlbfs"
            | "iso9660"
            | "mqueue"
            | "nsfs"
            | "overlay"
            | "proc"
            | "procfs"
            | "pstore"
            | "rpc_pipefs"
            | "securityfs"
            | "selinuxfs"
            | "squashfs"
            | "erofs"
            | "sysfs"
            | "tracefs"
    )
}

/// `--collector.filesystem.mount-points-exclude` default:
/// `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`.
/// `/dev`, `/proc`, `/sys` and everything under them; anything strictly under
/// `/run/credentials/`, `/var/lib/docker/` and `/var/lib/containers/storage/` (but not
/// those directories themselves: `.+` needs a character).
pub(crate) fn mount_point_excluded(mount_point: &str) -> bool {
    let Some(rest) = mount_point.strip_prefix('/') else {
        return false;
    };
    let whole_tree = |dir: &str| {
        rest.strip_prefix(dir)
            .is_some_and(|after| after.is_empty() || after.starts_with('/'))
    };
    let strictly_under = |dir: &str| {
        rest.strip_prefix(dir)
            .is_some_and(|after| !after.is_empty())
    };
    whole_tree("dev")
        || whole_tree("proc")
        || whole_tree("sys")
        || strictly_under("run/credentials/")
        || strictly_under("var/lib/docker/")
        || strictly_under("var/lib/containers/storage/")
}

/// `--collector.diskstats.device-exclude` default (node_exporter 1.6+):
/// `^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`: RAM disks, zram, loop and
/// floppy devices, and partitions of sd/hd/vd/xvd disks with a one-letter name and of
/// NVMe namespaces. (`sdaa1` is not excluded: `[a-z]` is one letter.)
pub(crate) fn disk_excluded(device: &str) -> bool {
    let digits = device.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let stem = &device[..device.len() - digits];
    match stem {
        "ram" | "zram" | "loop" | "fd" => return true,
        _ => {}
    }
    let one_letter_disk = |prefix: &str| {
        stem.strip_prefix(prefix)
            .is_some_and(|l| l.len() == 1 && l.bytes().all(|b| b.is_ascii_lowercase()))
    };
    if one_letter_disk("hd")
        || one_letter_disk("sd")
        || one_letter_disk("vd")
        || one_letter_disk("xvd")
    {
        return true;
    }
    // nvme\d+n\d+p
    let Some(rest) = stem.strip_prefix("nvme").and_then(|r| r.strip_suffix('p')) else {
        return false;
    };
    match rest.split_once('n') {
        Some((ctrl, ns)) => all_digits(ctrl) && all_digits(ns),
        None => false,
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_types() {
        for t in [
            "cgroup", "cgroup2", "proc", "sysfs", "overlay", "squashfs", "erofs", "nsfs", "tracefs",
        ] {
            assert!(fs_type_excluded(t), "{t}");
        }
        for t in [
            "ext4",
            "xfs",
            "tmpfs",
            "nfs4",
            "vfat",
            "cgroup3",
            "btrfs",
            "zfs",
            "fuse.sshfs",
            "",
        ] {
            assert!(!fs_type_excluded(t), "{t}");
        }
    }

    #[test]
    fn mount_points() {
        for m in [
            "/dev",
            "/dev/shm",
            "/proc",
            "/proc/sys/fs/binfmt_misc",
            "/sys",
            "/sys/fs/cgroup",
            "/run/credentials/systemd-sysctl.service",
            "/run/credentials/x/y",
            "/var/lib/docker/overlay2/abc/merged",
            "/var/lib/containers/storage/overlay",
        ] {
            assert!(mount_point_excluded(m), "{m}");
        }
        for m in [
            "/",
            "/devices",
            "/proc2",
            "/system",
            "/run",
            "/run/user/1000",
            "/run/credentials",
            "/run/credentials/",
            "/var/lib/docker",
            "/var/lib/docker/",
            "/var/lib/containers",
            "/home",
            "/mnt/data",
            "dev",
        ] {
            assert!(!mount_point_excluded(m), "{m}");
        }
    }

    #[test]
    fn disks() {
        for d in [
            "ram0",
            "zram0",
            "loop12",
            "fd0",
            "sda1",
            "hdb2",
            "vda15",
            "xvda1",
            "nvme0n1p1",
            "nvme12n3p45",
        ] {
            assert!(disk_excluded(d), "{d}");
        }
        for d in [
            "sda",
            "vda",
            "xvdb",
            "nvme0n1",
            "dm-0",
            "md0",
            "sr0",
            "sdaa1",
            "sdA1",
            "nvme0n1p",
            "nvmen1p1",
            "nvme0p1",
            "mmcblk0",
            "mmcblk0p1",
            "zram",
            "loop",
            "xram0",
            "nbd0",
        ] {
            assert!(!disk_excluded(d), "{d}");
        }
    }
}
