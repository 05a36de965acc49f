package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/image"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/privilege"
)

// privileges is what a container request may have: what its image
// declares, what it drops. See package privilege for the rule.
type privileges struct {
	declared, drop privilege.Set
	root           bool // the caller is root on this node: anything goes
}

// checkPrivileges refuses a request that asks for a privilege its image
// does not declare and this node does not allow, unless root on the node
// asks. Running as uid 0 is checked once the user is known (checkUser).
func (d *Daemon) checkPrivileges(ctx context.Context, spec nodeapi.ContainerSpec, img image.Image) (privileges, error) {
	declared, err := privilege.Declared(img.Config.Config.Labels)
	if err != nil {
		return privileges{}, errs.Invalid("image", "%s: %v", spec.Image, err)
	}
	drop, err := privilege.ParseList(spec.Security.Drop)
	if err != nil {
		return privileges{}, errs.Invalid("security.drop", "%v", err)
	}
	for i, c := range spec.Security.CapAdd {
		if _, ok := privilege.Cap(c); !ok {
			return privileges{}, errs.Invalid(fmt.Sprintf("security.capAdd[%d]", i), "%q is not a Linux capability", c)
		}
	}
	asked := privilege.Asked(privilegeRequest(spec.Security))
	for _, p := range drop.Sorted() {
		if asked[p] {
			return privileges{}, errs.Invalid("security.drop", "%s is both dropped and asked for", p)
		}
	}
	pr := privileges{declared: declared, drop: drop, root: roleOf(ctx) == nodeapi.RoleRoot}
	if pr.root {
		return pr, nil
	}
	return pr, d.refuse(spec.Image, privilege.Missing(asked, declared, d.cfg.AllowPrivileges))
}

// checkUser refuses uid 0 unless the image declares root (its own user is
// root, or its label says so), the node allows it, or root asks; and
// always when the request drops root (a request that drops root and names
// no user runs as nobody).
func (d *Daemon) checkUser(pr privileges, image string, uid uint32, imageRoot bool) error {
	if uid != 0 {
		return nil
	}
	if pr.drop[privilege.Root] {
		return errs.Invalid("user", "uid 0, but security.drop drops root")
	}
	if pr.root || imageRoot || pr.declared[privilege.Root] || d.cfg.AllowPrivileges[privilege.Root] {
		return nil
	}
	return d.refuse(image, []string{privilege.Root})
}

// refuse is the answer to a request asking for privileges nobody who may
// grant them granted: it names them and the two ways to allow them.
func (d *Daemon) refuse(image string, missing []string) error {
	if len(missing) == 0 {
		return nil
	}
	list := strings.Join(missing, ",")
	return fmt.Errorf("privilege %s: image %s does not declare it and this node does not allow it; "+
		"declare it in the image (moat image build --privilege %s) and sign the image, "+
		"or allow it on this node (allow-privileges=%s in /etc/moat/node.conf): %w", list, image, list, list, errs.ErrForbidden)
}
