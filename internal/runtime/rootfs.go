package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// maxMountData is the kernel's limit on mount options: one page.
const maxMountData = 4095

// MountRootfs stacks the image's layers (bottom first) under a writable
// upper directory with overlayfs at target. The upper directory stays
// empty when the container's root is read-only (runc remounts it so).
func MountRootfs(layers []string, upper, work, target string) error {
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("mount rootfs: %w", err)
		}
	}
	data, err := overlayOptions(layers, upper, work)
	if err != nil {
		return err
	}
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount rootfs at %s: %w", target, err)
	}
	return nil
}

func overlayOptions(layers []string, upper, work string) (string, error) {
	if len(layers) == 0 {
		// An image with no layers: an empty directory as the only lower.
		empty := filepath.Join(filepath.Dir(upper), "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return "", fmt.Errorf("mount rootfs: %w", err)
		}
		layers = []string{empty}
	}
	lowers := slices.Clone(layers)
	slices.Reverse(lowers) // overlayfs wants the top layer first
	for _, l := range lowers {
		if strings.ContainsAny(l, ":,") {
			return "", fmt.Errorf("mount rootfs: layer path %q contains ':' or ','", l)
		}
	}
	data := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(data) > maxMountData {
		return "", fmt.Errorf("mount rootfs: %d layers make overlay options of %d bytes, over the kernel's %d; squash the image", len(layers), len(data), maxMountData)
	}
	return data, nil
}

// UnmountRootfs unmounts target if it is mounted.
func UnmountRootfs(target string) error {
	err := unix.Unmount(target, 0)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		// Something still holds it (a debug session's cwd): detach lazily.
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		return nil
	}
	return fmt.Errorf("unmount %s: %w", target, err)
}

// IsMountPoint reports whether path is a mount point (its device differs
// from its parent's).
func IsMountPoint(path string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(path, &st) != nil || unix.Lstat(filepath.Dir(path), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}
