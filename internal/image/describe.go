package image

import (
	"strings"

	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/privilege"
)

// Describe is an image as the node and master APIs show it, with the
// privileges its config declares (a label that does not parse declares
// nothing; a node refuses to run such an image).
func Describe(img Image) nodeapi.Image {
	c := img.Config.Config
	declared, _ := privilege.Declared(c.Labels)
	if user, _, _ := strings.Cut(c.User, ":"); user == "0" || user == "root" {
		declared[privilege.Root] = true
	}
	return nodeapi.Image{
		Name: img.Name, Digest: string(img.Digest), Size: img.Size, Layers: len(img.Layers),
		Architecture: img.Config.Architecture, Entrypoint: c.Entrypoint, Cmd: c.Cmd, User: c.User, Imported: img.Imported,
		Signers: img.Signers, Privileges: declared.Sorted(),
	}
}
