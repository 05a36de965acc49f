package enroll_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatcloud/moat/internal/enroll"
	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/inventory"
	"github.com/moatcloud/moat/internal/provider"
	"github.com/moatcloud/moat/internal/provider/digitalocean"
	"github.com/moatcloud/moat/internal/provider/digitalocean/fake"
	"github.com/moatcloud/moat/internal/sshkey"
	"github.com/moatcloud/moat/internal/testcluster"
)

// TestBuildImageAlwaysDestroysTheBuilder: whatever fails, no builder is
// left at the provider: a build refused before anything is created makes
// no create call; a builder that never boots, and one whose snapshot
// fails after Prepare ran, are destroyed.
func TestBuildImageAlwaysDestroysTheBuilder(t *testing.T) {
	cloud := testcluster.NewCloud(t)
	f, err := fake.New(cloud.Machines(), fake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	c, err := digitalocean.New(f.Token(), f.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.Policy = provider.Policy{Attempts: 2, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	c.ActionPoll = 20 * time.Millisecond
	key := filepath.Join(t.TempDir(), "operator")
	signer, err := sshkey.GenerateKey(key, "operator")
	if err != nil {
		t.Fatal(err)
	}
	build := func(mod func(*enroll.BuildOptions)) error {
		o := enroll.BuildOptions{Provider: c, Cluster: "c1", Pool: "work", Base: fake.SystemImage, Type: "s-1vcpu-1gb", Region: "fra1",
			OperatorKey: sshkey.AuthorizedKey(signer.PublicKey()) + " operator", BootTimeout: time.Minute,
			Image: enroll.ImageOptions{Access: inventory.Access{Identity: key}, Binary: testcluster.Moat(t), Metadata: "digitalocean",
				RequireSigned: true, AllowedSigners: []byte(testcluster.AllowedSigners(t))}}
		mod(&o)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err := enroll.BuildImage(ctx, o)
		return err
	}
	noneLeft := func(what string) {
		t.Helper()
		if s := f.Servers(); len(s) != 0 {
			t.Errorf("%s: droplets left: %+v", what, s)
		}
		// The fake destroys a droplet's machine after answering.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			s, _ := cloud.List(context.Background(), nil)
			if len(s) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: machines left: %+v", what, s)
				break
			}
		}
	}

	err = build(func(o *enroll.BuildOptions) { o.Image.AllowedSigners = nil })
	if !errors.Is(err, errs.ErrInvalid) || f.Requests("POST /v2/droplets") != 0 {
		t.Errorf("no signers: %v after %d create calls; want refused before any", err, f.Requests("POST /v2/droplets"))
	}

	f.Inject(fake.Failure{Route: "POST /v2/droplets", Kind: fake.NeverBoot})
	err = build(func(o *enroll.BuildOptions) { o.BootTimeout = 2 * time.Second })
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("a builder that never boots: %v", err)
	}
	noneLeft("never booted")

	f.Inject(fake.Failure{Route: "POST /v2/droplets/{id}/actions", Kind: fake.ServerError, Times: 100})
	err = build(func(*enroll.BuildOptions) {})
	if err == nil || !strings.Contains(err.Error(), "snapshot builder") {
		t.Errorf("a snapshot that fails: %v", err)
	}
	noneLeft("snapshot failed")
	if imgs := f.Images(); len(imgs) != 0 {
		t.Errorf("images after failed builds: %v", imgs)
	}
}
