// Package version holds moat's version, set at build time with
// -ldflags "-X github.com/moatcloud/moat/internal/version.Version=v1.2.3".
package version

// Version is the running binary's version.
var Version = "dev"
