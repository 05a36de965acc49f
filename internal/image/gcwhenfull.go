package image

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// CollectWhenFull looks every interval at the disk holding path and calls
// collect (with how full it is, in percent) while it is at least
// threshold percent full, until ctx ends. A threshold of 0 or less never
// collects.
func CollectWhenFull(ctx context.Context, path string, threshold int, interval time.Duration, collect func(used int)) {
	if threshold <= 0 {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if used, err := diskUsedPercent(path); err == nil && used >= threshold {
			collect(used)
		}
	}
}

// diskUsedPercent is how full the disk holding path is, as df's Use%:
// used of what users may use, not counting the blocks reserved for root.
func diskUsedPercent(path string) (int, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return 0, err
	}
	return usedPercent(fs.Blocks, fs.Bfree, fs.Bavail), nil
}

// usedPercent is df's Use%, rounded up. Pure.
func usedPercent(blocks, free, avail uint64) int {
	used := blocks - min(free, blocks)
	if used+avail == 0 {
		return 0
	}
	return int((used*100 + used + avail - 1) / (used + avail))
}
