package enroll

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// Where image mode puts what a pool node boots with.
const (
	FirstbootUnitPath = "/etc/systemd/system/moat-firstboot.service"
	// CloudInitDropIn turns cloud-init's own handling of the user data
	// (and of the provider's SSH keys) off: moat-firstboot reads it.
	CloudInitDropIn = "/etc/cloud/cloud.cfg.d/99-moat.cfg"
	wantsDir        = "/etc/systemd/system/multi-user.target.wants"
)

// ImageOptions are those of Prepare: what every pool node made from the
// image trusts, all from the operator.
type ImageOptions struct {
	Access   inventory.Access
	ExtraSSH []string
	Binary   string // the moat binary to install; default this executable
	// RequireSigned and AllowedSigners: the pool nodes' signing policy,
	// as Options.
	RequireSigned  bool
	AllowedSigners []byte
	// SecretsKey is the operator's secrets key file; empty: the image has
	// none (moat pool image --no-secrets-key).
	SecretsKey []byte
	HardenSSHD bool
	// Metadata is where moat-firstboot reads the user data on the pool's
	// cloud: a provider kind (moat node firstboot --metadata KIND).
	Metadata string
	Progress func(total int64) io.Writer
	Log      func(step string)
}

var metadataRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// firstbootUnit runs moat node firstboot once, before sshd starts (sshd
// needs the host key it installs) and before the node daemon (which needs
// the peer key), after cloud-init (which must not touch the host keys
// after it: see cloudInitConfig).
func firstbootUnit(metadata string) string {
	return `[Unit]
Description=moat first boot: the master's keys and a one-time host key from the user data, once
After=network-online.target cloud-init.service
Wants=network-online.target
Before=ssh.service sshd.service moat-node.service
ConditionPathExists=!` + nodeapi.FirstbootDone + `

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + BinaryPath + ` node firstboot --metadata ` + metadata + `

[Install]
WantedBy=multi-user.target
`
}

// cloudInitConfig keeps a stock cloud-init from acting on what the
// master controls: the user data (moat-firstboot applies its strict
// subset instead) and the SSH keys a create call names (the provider puts
// them in the metadata; they would be root logins no gate confines). It
// leaves the host keys alone (firstboot installs the one-time key;
// cloud-init would delete it or add others) and takes no vendor data,
// whose cloud-config is merged over this file's (a provider's script
// setting a root password, say: the image has all it needs).
const cloudInitConfig = `# moat: a pool node's first boot is moat-firstboot's (moat pool image).
allow_userdata: false
allow_public_ssh_keys: false
ssh_deletekeys: false
ssh_genkeytypes: []
ssh_pwauth: false
vendor_data:
  enabled: false
vendor_data2:
  enabled: false
`

// sealScript removes from the builder what must differ on every server
// made from the image, or must not be in it: the host keys (firstboot
// installs the master's one-time key), firstboot's marker and one-time
// marker, the master's and peer's keys, the machine id (where systemd
// runs: it makes a new one at boot; on a local node /etc/machine-id is
// the machine's own), cloud-init's state, shell history and logs.
func sealScript(systemd bool) string {
	s := `set -e
rm -f /etc/ssh/ssh_host_*key /etc/ssh/ssh_host_*key.pub ` + nodeapi.HostKeyOnetime + ` ` + nodeapi.FirstbootDone + ` ` + PeerKeyPath + `
rm -f /root/.bash_history /root/.lesshst
if command -v cloud-init >/dev/null 2>&1; then cloud-init clean --logs >/dev/null 2>&1 || true; fi
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
`
	if systemd {
		s += `journalctl --rotate >/dev/null 2>&1 || true
journalctl --vacuum-time=1s >/dev/null 2>&1 || true
rm -rf /var/log/journal/*
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
`
	}
	return s + "sync\n"
}

// Prepare readies a builder machine to be snapshotted into a pool's
// image, through the operator's own ssh: everything a pool node needs
// except the master's and the peer's keys, which the master's user data
// adds at each server's first boot. It installs the binary, the signing
// policy, the secrets key (if given), hardens sshd (if asked), writes the
// moat-node and moat-firstboot units enabled but not started (written
// without systemd too), turns cloud-init's user data off, drops any
// moat key lines from root's authorized_keys (the operator's own stay:
// their access to every pool node), and seals: host keys, markers,
// machine id and logs removed. The caller powers the machine off and
// snapshots it.
func Prepare(ctx context.Context, opts ImageOptions) error {
	log := opts.Log
	if log == nil {
		log = func(string) {}
	}
	if !metadataRE.MatchString(opts.Metadata) {
		return errs.Invalid("metadata", "%q: want a provider kind, e.g. digitalocean", opts.Metadata)
	}
	signing := Options{RequireSigned: opts.RequireSigned, AllowedSigners: opts.AllowedSigners}
	if err := checkSigning(signing); err != nil {
		return err
	}
	r, m, binary, err := open(ctx, opts.Access, opts.ExtraSSH, opts.Binary)
	if err != nil {
		return err
	}
	defer r.close()
	if _, err := hardenAndInstall(ctx, r, opts.HardenSSHD, binary, opts.Progress, log); err != nil {
		return err
	}
	if dropped, err := dropMoatKeys(ctx, r); err != nil {
		return err
	} else if dropped {
		log("removed moat's key lines from " + AuthorizedKeys + ": each pool node gets the master's from its user data")
	}
	if _, err := installSigning(ctx, r, signing); err != nil {
		return err
	}
	log(signingPolicy(opts.RequireSigned))
	if installed, err := installSecretsKey(ctx, r, opts.SecretsKey); err != nil {
		return err
	} else if installed {
		log("installed the cluster's secrets key as " + SecretsKeyPath + " (root's, 0600): whoever holds the provider's token can read it from a snapshot")
	} else if len(opts.SecretsKey) == 0 {
		if _, err := r.run(ctx, nil, "rm -f "+SecretsKeyPath); err != nil {
			return err
		}
		log("no secrets key in the image: pool nodes cannot open secrets")
	}
	if err := installUnits(ctx, r, m.systemd, opts.Metadata); err != nil {
		return err
	}
	log("moat-node and moat-firstboot (moat node firstboot --metadata " + opts.Metadata + ") enabled, not started")
	if err := r.writeFile(ctx, CloudInitDropIn, 0o644, []byte(cloudInitConfig)); err != nil {
		return fmt.Errorf("turn cloud-init's user data off: %w", err)
	}
	log("cloud-init ignores the user data and the provider's SSH keys (" + CloudInitDropIn + ")")
	if _, err := r.run(ctx, nil, sealScript(m.systemd)); err != nil {
		return fmt.Errorf("seal the image: %w", err)
	}
	log("sealed: no host keys, no first-boot markers, no machine id, empty logs")
	return nil
}

// installUnits writes the moat-node and moat-firstboot units and enables
// both for multi-user.target without starting them: with systemctl where
// systemd runs, else as the symlinks systemctl enable makes.
func installUnits(ctx context.Context, r *remote, systemd bool, metadata string) error {
	if err := r.writeFile(ctx, UnitPath, 0o644, []byte(unit)); err != nil {
		return err
	}
	if err := r.writeFile(ctx, FirstbootUnitPath, 0o644, []byte(firstbootUnit(metadata))); err != nil {
		return err
	}
	cmd := "systemctl daemon-reload && systemctl enable --quiet moat-node.service moat-firstboot.service"
	if !systemd {
		cmd = fmt.Sprintf("mkdir -p %[1]s && ln -sf %[2]s %[1]s/moat-node.service && ln -sf %[3]s %[1]s/moat-firstboot.service",
			wantsDir, UnitPath, FirstbootUnitPath)
	}
	if _, err := r.run(ctx, nil, cmd); err != nil {
		return fmt.Errorf("enable moat's units: %w", err)
	}
	return nil
}

// dropMoatKeys removes the lines of moat's keys (the master's, the
// peer's, any other pinned to the gate) from root's authorized_keys: an
// image carries none (the seal removes the peer's private key).
func dropMoatKeys(ctx context.Context, r *remote) (bool, error) {
	current, err := r.run(ctx, nil, "cat "+AuthorizedKeys+" 2>/dev/null || true")
	if err != nil {
		return false, err
	}
	var keep []string
	for _, line := range withoutMoat(current) {
		if !strings.Contains(line, BinaryPath+" gate") { // any key pinned to the gate: link keys too
			keep = append(keep, line)
		}
	}
	if strings.Join(keep, "\n") == strings.TrimRight(current, "\n") {
		return false, nil
	}
	text := strings.Join(keep, "\n")
	if text != "" {
		text += "\n"
	}
	return true, r.writeFile(ctx, AuthorizedKeys, 0o600, []byte(text))
}
