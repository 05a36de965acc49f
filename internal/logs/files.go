package logs

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// rotatedIndexes lists the n of every container.log.n in dir, ascending.
func rotatedIndexes(dir string) ([]int, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list logs: %w", err)
	}
	var idx []int
	for _, de := range des {
		s, ok := strings.CutPrefix(de.Name(), currentName+".")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(s); err == nil && n > 0 && strconv.Itoa(n) == s {
			idx = append(idx, n)
		}
	}
	slices.Sort(idx)
	return idx, nil
}

// openOldest opens the oldest log file in dir, or returns nil if there is
// none. A rotation between listing and opening could hand it a newer file,
// so it checks afterwards that the file is still the oldest, and retries.
func openOldest(dir string) (*os.File, error) {
	for range maxRetries {
		k, err := oldestIndex(dir)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(logPath(dir, k))
		if errors.Is(err, os.ErrNotExist) {
			if k == 0 {
				return nil, nil
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read logs: %w", err)
		}
		ok, err := stillOldest(f, dir, k)
		if ok && err == nil {
			return f, nil
		}
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// oldestIndex returns the index of the oldest file: the highest n of a
// container.log.n, or 0 for container.log.
func oldestIndex(dir string) (int, error) {
	idx, err := rotatedIndexes(dir)
	if err != nil || len(idx) == 0 {
		return 0, err
	}
	return idx[len(idx)-1], nil
}

// stillOldest reports whether f is still the file at index k and k still
// the oldest index.
func stillOldest(f *os.File, dir string, k int) (bool, error) {
	same, err := sameFile(f, logPath(dir, k))
	if err != nil || !same {
		return false, err
	}
	now, err := oldestIndex(dir)
	return now == k, err
}
