package local

import (
	"errors"
	"path/filepath"
)

// SweepStale destroys the clusters under the directories matching glob
// whose creating process is gone: what a killed test run left behind.
func SweepStale(glob string) error {
	dirs, _ := filepath.Glob(glob)
	var errs []error
	for _, d := range dirs {
		c, err := Load(d)
		if err != nil || c.Owner == 0 || alive(c.Owner) {
			continue
		}
		errs = append(errs, c.Destroy())
	}
	return errors.Join(errs...)
}
