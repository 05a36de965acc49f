package master

import (
	"context"
	"fmt"
	"os"
	"path"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/pkg/sftp"

	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
)

// ensureImage makes sure the node has the image: it asks which blobs the
// node lacks, uploads only those into the node's inbox over the gate's
// SFTP, and has the node assemble (and verify) the image.
func (a *agent) ensureImage(ctx context.Context, manifest, name string) error {
	lock := a.pushLock(manifest)
	lock.Lock()
	defer lock.Unlock()
	img, err := a.m.images.Resolve(manifest)
	if err != nil {
		return fmt.Errorf("image %s: %w", manifest, err)
	}
	sigs, err := a.m.images.Signatures(img.Digest)
	if err != nil {
		return err
	}
	// Present with every signature the master has: nothing to do. (An
	// image signed after it reached the node gets its signatures now.)
	if have, err := a.api.Image(ctx, manifest); err == nil && len(have.Signers) >= len(img.Signers) {
		return nil
	}
	var all []string
	for _, d := range img.Blobs() {
		all = append(all, string(d))
	}
	missing, err := a.api.MissingBlobs(ctx, all)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		if err := a.upload(ctx, missing); err != nil {
			return fmt.Errorf("push %s to %s: %w", name, a.name, err)
		}
	}
	req := nodeapi.PullRequest{Name: name, Digest: manifest}
	for _, s := range sigs {
		req.Signatures = append(req.Signatures, string(s))
	}
	_, err = a.api.Pull(ctx, req)
	return err
}

func (a *agent) pushLock(manifest string) *sync.Mutex {
	a.pushMu.Lock()
	defer a.pushMu.Unlock()
	l, ok := a.pushing[manifest]
	if !ok {
		l = &sync.Mutex{}
		a.pushing[manifest] = l
	}
	return l
}

// upload sends blobs from the master's store to the node's inbox.
func (a *agent) upload(ctx context.Context, blobs []string) error {
	client, err := a.conn.SFTP(ctx, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.MkdirAll("blobs"); err != nil {
		return err
	}
	for _, b := range blobs {
		d := digest.Digest(b)
		n, err := uploadFile(client, a.m.images.BlobPath(d), path.Join("blobs", image.InboxName(d)))
		a.m.stats.pushedBytes.Add(n)
		if err != nil {
			return fmt.Errorf("blob %s: %w", d, err)
		}
	}
	return nil
}

func uploadFile(client *sftp.Client, src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := client.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return 0, err
	}
	n, err := out.ReadFrom(in)
	if err != nil {
		out.Close()
		return n, err
	}
	return n, out.Close()
}
