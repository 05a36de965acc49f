package spec

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Link lets the app's replicas reach another app's port: the node opens
// 127.0.0.1:Local inside each replica, and carries each connection to a
// ready replica of App (over SSH when it runs on another node). The
// replicas reach nothing else.
type Link struct {
	App   string `json:"app"`   // an app of the same tenant
	Port  int    `json:"port"`  // a tcp port App declares
	Local int    `json:"local"` // where the replicas connect; default Port
}

// MaxLinks bounds the links of one app.
const MaxLinks = 64

func (p *parser) links(v *yaml.Node, path string) error {
	return p.items(v, path, func(_ int, item *yaml.Node, path string) error {
		var l Link
		err := p.fields(item, path, []field{
			{"app", p.toStr(&l.App)},
			{"port", p.toInt(&l.Port)},
			{"local", p.toInt(&l.Local)},
		})
		if l.Local == 0 {
			l.Local = l.Port
		}
		p.app.Links = append(p.app.Links, l)
		return err
	})
}

func (c *checker) links(a App) {
	if len(a.Links) > MaxLinks {
		c.add("links", "%d links: at most %d", len(a.Links), MaxLinks)
	}
	locals := map[int]int{}
	targets := map[string]int{}
	own := map[int]bool{}
	for _, p := range a.Ports {
		if p.Protocol == ProtoTCP {
			own[p.Port] = true
		}
	}
	for i, l := range a.Links {
		field := fmt.Sprintf("links[%d]", i)
		switch {
		case l.App == "":
			c.add(field+".app", "required: the app to reach")
		case !nameRE().MatchString(l.App):
			c.add(field+".app", "%q: want an app name (1 to 30 lowercase letters, digits and '-', starting with a letter)", l.App)
		case l.App == a.Name:
			c.add(field+".app", "%q is this app: its replicas reach their own ports on loopback already", l.App)
		}
		if l.Port < 1 || l.Port > 65535 {
			c.add(field+".port", "%d: want the target's tcp port, 1-65535", l.Port)
		}
		switch j, dup := locals[l.Local]; {
		case l.Local < 1 || l.Local > 65535:
			c.add(field+".local", "%d: want a port 1-65535", l.Local)
		case dup:
			c.add(field+".local", "%d is also links[%d].local", l.Local, j)
		case own[l.Local]:
			c.add(field+".local", "%d is a port this app declares: its replicas listen there", l.Local)
		}
		locals[l.Local] = i
		key := fmt.Sprintf("%s:%d", l.App, l.Port)
		if j, dup := targets[key]; dup {
			c.add(field, "%s is also links[%d]", key, j)
		}
		targets[key] = i
	}
}
