package layer

import (
	"errors"
	"path"
	"strings"
)

// maxName is Linux's PATH_MAX. Longer names could not be used inside the
// container anyway, and they bound the work of walking one path.
const maxName = 4096

// cleanName turns a tar name into a clean path relative to the layer root
// ("." for the root itself). Absolute names and names with a ".." component
// are refused even where cleaning would keep them inside ("a/../b"): no
// legitimate layer writer produces them.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", refuse(name, "empty name")
	}
	if len(name) >= maxName {
		return "", refuse(name[:64]+"...", "name longer than %d bytes", maxName-1)
	}
	if err := checkRelative(name); err != nil {
		return "", refuse(name, "%s", err)
	}
	return path.Clean(name), nil
}

// cleanLinkname checks a hardlink's target: a clean relative path inside the
// layer, not the root itself.
func cleanLinkname(entry, link string) (string, error) {
	if err := checkRelative(link); err != nil {
		return "", refuse(entry, "hardlink target %q: %s", link, err)
	}
	clean := path.Clean(link)
	if link == "" || clean == "." {
		return "", refuse(entry, "hardlink target %q: not a file in the layer", link)
	}
	return clean, nil
}

func checkRelative(name string) error {
	if strings.HasPrefix(name, "/") {
		return errors.New("absolute path escapes the layer")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return errors.New("path escapes the layer")
		}
	}
	return nil
}

// Whiteout markers, as the OCI image spec names them.
const (
	whPrefix = ".wh."
	whMeta   = ".wh..wh."
	whOpaque = ".wh..wh..opq"
)

type whKind int

const (
	notWhiteout whKind = iota
	whFile             // remove one name from lower layers
	whDir              // hide all of a directory's lower contents
	whSkip             // other .wh..wh. metadata: ignored
)

// whiteoutKind classifies a clean entry name and returns the directory it
// applies to; for whFile also the single name to hide in that directory
// (not yet checked: ".wh.." would name "..").
func whiteoutKind(name string) (kind whKind, dir, hidden string) {
	dir, base := path.Split(name)
	dir = path.Clean(dir) // "" becomes "."
	switch {
	case strings.Contains("/"+dir, "/"+whMeta):
		return whSkip, "", "" // inside AUFS metadata such as .wh..wh.plnk/
	case !strings.HasPrefix(base, whPrefix):
		return notWhiteout, "", ""
	case base == whOpaque:
		return whDir, dir, ""
	case strings.HasPrefix(base, whMeta):
		return whSkip, "", ""
	default:
		return whFile, dir, strings.TrimPrefix(base, whPrefix)
	}
}
