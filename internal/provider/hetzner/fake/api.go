package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// idOrName is a reference the API takes as a number (id) or a string (name).
type idOrName struct {
	ID   int64
	Name string
}

func (x *idOrName) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &x.Name)
	}
	return json.Unmarshal(b, &x.ID)
}

type createBody struct {
	Name             string            `json:"name"`
	ServerType       idOrName          `json:"server_type"`
	Image            idOrName          `json:"image"`
	Location         string            `json:"location"`
	UserData         string            `json:"user_data"`
	StartAfterCreate *bool             `json:"start_after_create"`
	Labels           map[string]string `json:"labels"`
}

type imageBody struct {
	Type        *string            `json:"type"`
	Description *string            `json:"description"`
	Labels      *map[string]string `json:"labels"`
}

func (f *Fake) handle(r *http.Request, route string, id int64, body createBody, fail *Failure) (int, any, *apiError) {
	q := r.URL.Query()
	switch route {
	case "GET /server_types":
		return f.listTypes(q)
	case "GET /servers":
		return f.listServers(q)
	case "POST /servers":
		var kind Kind
		if fail != nil {
			kind = fail.Kind
		}
		return f.createServer(body, kind)
	case "GET /servers/{id}":
		f.mu.Lock()
		defer f.mu.Unlock()
		s := f.servers[id]
		if s == nil {
			return 0, nil, errNotFound("server")
		}
		return 200, map[string]any{"server": f.serverJSON(s)}, nil
	case "DELETE /servers/{id}":
		return f.deleteServer(id)
	case "POST /servers/{id}/actions/poweroff":
		return f.poweroff(id)
	case "POST /servers/{id}/actions/create_image":
		var b imageBody
		if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&b); err != nil {
			return 0, nil, errorf(400, "json_error", "invalid JSON: %v", err)
		}
		return f.createImage(id, b)
	case "GET /servers/actions/{id}", "GET /actions/{id}":
		f.mu.Lock()
		defer f.mu.Unlock()
		a := f.actions[id]
		if a == nil {
			return 0, nil, errNotFound("action")
		}
		return 200, map[string]any{"action": actionJSON(a)}, nil
	case "GET /actions":
		return f.listActions(q)
	case "GET /images/{id}":
		f.mu.Lock()
		defer f.mu.Unlock()
		if id == SystemImageID {
			return 200, map[string]any{"image": systemImageJSON()}, nil
		}
		im := f.images[id]
		if im == nil {
			return 0, nil, errNotFound("image")
		}
		return 200, map[string]any{"image": imageJSON(im)}, nil
	case "DELETE /images/{id}":
		f.mu.Lock()
		defer f.mu.Unlock()
		if id == SystemImageID {
			return 0, nil, errorf(403, "forbidden", "system images cannot be deleted")
		}
		im := f.images[id]
		if im == nil {
			return 0, nil, errNotFound("image")
		}
		// Machines that keep images (provider/local's) drop its disk too.
		if d, ok := f.m.(interface {
			DeleteImage(context.Context, string) error
		}); ok && im.Machine != "" {
			if err := d.DeleteImage(r.Context(), im.Machine); err != nil {
				return 0, nil, errorf(500, "server_error", "deleting image %d: %v", id, err)
			}
		}
		delete(f.images, id)
		return http.StatusNoContent, nil, nil
	}
	return 0, nil, errNotFound("route")
}

// page cuts n entries into the requested page: ?page (from 1) and
// ?per_page (default 25, at most 50, or the fake's PageSize).
func (f *Fake) page(q url.Values, n int) (lo, hi int, meta map[string]any, err *apiError) {
	pg, per := 1, 25
	if s := q.Get("page"); s != "" {
		v, e := strconv.Atoi(s)
		if e != nil || v < 1 {
			return 0, 0, nil, errInvalid("invalid page %q", s)
		}
		pg = v
	}
	if s := q.Get("per_page"); s != "" {
		v, e := strconv.Atoi(s)
		if e != nil || v < 1 {
			return 0, 0, nil, errInvalid("invalid per_page %q", s)
		}
		per = min(v, 50)
	}
	per = min(per, f.opt.PageSize)
	last := max(1, (n+per-1)/per)
	lo = min(n, (pg-1)*per)
	hi = min(n, lo+per)
	var prev, next any
	if pg > 1 {
		prev = min(pg-1, last)
	}
	if pg < last {
		next = pg + 1
	}
	meta = map[string]any{"pagination": map[string]any{"page": pg, "per_page": per,
		"previous_page": prev, "next_page": next, "last_page": last, "total_entries": n}}
	return lo, hi, meta, nil
}

func (f *Fake) listTypes(q url.Values) (int, any, *apiError) {
	var all []any
	for i, t := range f.opt.Types {
		all = append(all, typeJSON(int64(i+1), t))
	}
	if n := q.Get("name"); n != "" {
		all = nil
		for i, t := range f.opt.Types {
			if t.Name == n {
				all = append(all, typeJSON(int64(i+1), t))
			}
		}
	}
	lo, hi, meta, err := f.page(q, len(all))
	if err != nil {
		return 0, nil, err
	}
	return 200, map[string]any{"server_types": nonNil(all[lo:hi]), "meta": meta}, nil
}

func nonNil(a []any) []any {
	if a == nil {
		return []any{}
	}
	return a
}

func (f *Fake) listServers(q url.Values) (int, any, *apiError) {
	sel, perr := parseSelector(q.Get("label_selector"))
	if perr != nil {
		return 0, nil, errInvalid("label_selector: %v", perr)
	}
	name := q.Get("name")
	statuses := q["status"]
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []int64
	for id, s := range f.servers {
		if now.Before(s.visible) || (name != "" && s.Name != name) || !sel.matches(s.Labels) ||
			(len(statuses) > 0 && !slices.Contains(statuses, s.Status)) {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	lo, hi, meta, err := f.page(q, len(ids))
	if err != nil {
		return 0, nil, err
	}
	out := []any{}
	for _, id := range ids[lo:hi] {
		out = append(out, f.serverJSON(f.servers[id]))
	}
	return 200, map[string]any{"servers": out, "meta": meta}, nil
}

func (f *Fake) findType(ref idOrName) (Type, int64, bool) {
	for i, t := range f.opt.Types {
		if (ref.Name != "" && t.Name == ref.Name) || (ref.ID != 0 && int64(i+1) == ref.ID) {
			return t, int64(i + 1), true
		}
	}
	return Type{}, 0, false
}

func (f *Fake) createServer(b createBody, fail Kind) (int, any, *apiError) {
	if !validHostname(b.Name) {
		return 0, nil, errInvalid("name %q is not a valid hostname (RFC 1123)", b.Name)
	}
	t, _, ok := f.findType(b.ServerType)
	if !ok {
		return 0, nil, errInvalid("server type %v not found", b.ServerType)
	}
	loc := b.Location
	if loc == "" {
		for _, l := range []string{"fsn1", "nbg1", "hel1", "ash"} {
			if _, priced := t.Hourly[l]; priced && !slices.Contains(t.Unsold, l) {
				loc = l
				break
			}
		}
	}
	if _, known := locations[loc]; !known {
		return 0, nil, errInvalid("location %q not found", b.Location)
	}
	if _, priced := t.Hourly[loc]; !priced {
		return 0, nil, errInvalid("unsupported location for server type")
	}
	if slices.Contains(t.Unsold, loc) {
		return 0, nil, errorf(403, "resource_unavailable", "server type %s is unavailable in %s", t.Name, loc)
	}
	for k, v := range b.Labels {
		if !validLabelKey(k) || !validLabelValue(v) {
			return 0, nil, errInvalid("invalid label %q=%q", k, v)
		}
	}
	if len(b.UserData) > 32<<10 {
		return 0, nil, errInvalid("user_data is longer than 32 KiB")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	machineImage, imageID := "", int64(0)
	switch {
	case b.Image.Name == SystemImage || b.Image.ID == SystemImageID:
		machineImage, imageID = SystemImage, SystemImageID
	case b.Image.ID != 0 && f.images[b.Image.ID] != nil && f.images[b.Image.ID].Status == "available":
		machineImage, imageID = f.images[b.Image.ID].Machine, b.Image.ID
	default:
		return 0, nil, errInvalid("image %v not found", b.Image)
	}
	if t.Arch == "arm" {
		return 0, nil, errInvalid("image architecture x86 does not match server type %s (arm)", t.Name)
	}
	for _, s := range f.servers {
		if s.Name == b.Name {
			return 0, nil, errorf(409, "uniqueness_error", "server name is already used")
		}
	}
	now := time.Now()
	s := &Server{ID: f.id(), Name: b.Name, Type: t.Name, Location: loc, Image: machineImage, ImageID: imageID,
		Labels: b.Labels, Status: "initializing", UserData: b.UserData, Created: now,
		visible: now.Add(f.opt.ListDelay), booted: make(chan struct{})}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	f.servers[s.ID] = s
	create := f.newAction("create_server", s.ID)
	start := f.newAction("start_server", s.ID)
	answer := map[string]any{"server": f.serverJSON(s), "action": actionJSON(create),
		"next_actions": []any{actionJSON(start)}, "root_password": nil}
	switch fail {
	case NeverBoot:
		close(s.booted)
		return 201, answer, nil
	case Silent:
		close(s.booted)
		s.Status, s.IPv4 = "running", fmt.Sprintf("192.0.2.%d", s.ID%250+1)
		create.Status, create.Finished = "success", now
		start.Status, start.Finished = "success", now
		return 201, answer, nil
	}
	f.wg.Add(1)
	go f.boot(s, create, start)
	return 201, answer, nil
}

func (f *Fake) boot(s *Server, create, start *action) {
	defer f.wg.Done()
	defer close(s.booted)
	ip, err := f.m.Boot(f.ctx, s.Name, s.Image, s.UserData)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if err != nil {
		for _, a := range []*action{create, start} {
			a.Status, a.Finished, a.Code, a.Message = "error", now, "action_failed", "server could not be created: "+err.Error()
		}
		s.Status = "off"
		return
	}
	s.IPv4 = ip
	if s.Status == "initializing" {
		s.Status = "running"
	}
	create.Status, create.Finished = "success", now
	start.Status, start.Finished = "success", now
}

func (f *Fake) id() int64 {
	f.nextID++
	return f.nextID
}

func (f *Fake) newAction(command string, server int64) *action {
	a := &action{ID: f.id(), Command: command, Status: "running", Started: time.Now(),
		Res: []resRef{{ID: server, Type: "server"}}}
	f.actions[a.ID] = a
	return a
}

func (f *Fake) deleteServer(id int64) (int, any, *apiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.servers[id]
	if s == nil {
		return 0, nil, errNotFound("server")
	}
	a := f.newAction("delete_server", id)
	if s.Status != "deleting" {
		s.Status = "deleting"
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			<-s.booted
			err := f.m.Destroy(f.ctx, s.Name)
			f.mu.Lock()
			defer f.mu.Unlock()
			if err != nil {
				a.Status, a.Finished, a.Code, a.Message = "error", time.Now(), "action_failed", err.Error()
				return
			}
			delete(f.servers, id)
			a.Status, a.Finished = "success", time.Now()
		}()
	} else {
		// A second delete of a server going away: done when the first is.
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			<-s.booted
			for {
				f.mu.Lock()
				_, still := f.servers[id]
				if !still {
					a.Status, a.Finished = "success", time.Now()
				}
				f.mu.Unlock()
				if !still {
					return
				}
				select {
				case <-f.ctx.Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
	}
	return 200, map[string]any{"action": actionJSON(a)}, nil
}

func (f *Fake) poweroff(id int64) (int, any, *apiError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.servers[id]
	if s == nil {
		return 0, nil, errNotFound("server")
	}
	if s.Status == "deleting" {
		return 0, nil, errorf(423, "locked", "server is being deleted")
	}
	a := f.newAction("stop_server", id)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		<-s.booted
		f.mu.Lock()
		defer f.mu.Unlock()
		if s.Status != "deleting" {
			s.Status = "off"
		}
		a.Status, a.Finished = "success", time.Now()
	}()
	return 201, map[string]any{"action": actionJSON(a)}, nil
}

func (f *Fake) createImage(id int64, b imageBody) (int, any, *apiError) {
	if b.Type != nil && *b.Type != "snapshot" {
		return 0, nil, errInvalid("image type %q is not supported here (snapshot only)", *b.Type)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.servers[id]
	if s == nil {
		return 0, nil, errNotFound("server")
	}
	if s.Status == "deleting" {
		return 0, nil, errorf(423, "locked", "server is being deleted")
	}
	im := &image{ID: f.id(), Status: "creating", From: id, Created: time.Now()}
	if b.Description != nil {
		im.Description = *b.Description
	}
	if b.Labels != nil {
		im.Labels = *b.Labels
	}
	f.images[im.ID] = im
	a := f.newAction("create_image", id)
	a.Res = append(a.Res, resRef{ID: im.ID, Type: "image"})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		<-s.booted
		machine, err := f.m.Snapshot(f.ctx, s.Name)
		f.mu.Lock()
		defer f.mu.Unlock()
		if err != nil {
			delete(f.images, im.ID)
			a.Status, a.Finished, a.Code, a.Message = "error", time.Now(), "action_failed", err.Error()
			return
		}
		im.Machine, im.Status = machine, "available"
		a.Status, a.Finished = "success", time.Now()
	}()
	return 201, map[string]any{"image": imageJSON(im), "action": actionJSON(a)}, nil
}

func (f *Fake) listActions(q url.Values) (int, any, *apiError) {
	var ids []int64
	for _, s := range q["id"] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, nil, errInvalid("invalid id %q", s)
		}
		ids = append(ids, n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var found []any
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if a := f.actions[id]; a != nil {
			found = append(found, actionJSON(a))
		}
	}
	lo, hi, meta, err := f.page(q, len(found))
	if err != nil {
		return 0, nil, err
	}
	return 200, map[string]any{"actions": nonNil(found[lo:hi]), "meta": meta}, nil
}

func actionJSON(a *action) map[string]any {
	out := map[string]any{"id": a.ID, "command": a.Command, "status": a.Status, "progress": 0,
		"started": a.Started.UTC().Format(time.RFC3339), "finished": nil, "resources": a.Res, "error": nil}
	if a.Status != "running" {
		out["progress"] = 100
		out["finished"] = a.Finished.UTC().Format(time.RFC3339)
	}
	if a.Status == "error" {
		out["error"] = map[string]any{"code": a.Code, "message": a.Message}
	}
	return out
}

func locationJSON(name string) map[string]any {
	return map[string]any{"id": locations[name], "name": name, "description": name, "country": "DE",
		"city": name, "latitude": 0, "longitude": 0, "network_zone": "eu-central"}
}

func typeJSON(id int64, t Type) map[string]any {
	arch := t.Arch
	if arch == "" {
		arch = "x86"
	}
	var prices, locs []any
	for _, l := range []string{"fsn1", "nbg1", "hel1", "ash"} {
		h, ok := t.Hourly[l]
		if !ok {
			continue
		}
		prices = append(prices, map[string]any{"location": l,
			"price_hourly":         map[string]any{"net": money(h / 1.19), "gross": money(h)},
			"price_monthly":        map[string]any{"net": money(t.Monthly[l] / 1.19), "gross": money(t.Monthly[l])},
			"included_traffic":     21990232555520,
			"price_per_tb_traffic": map[string]any{"net": "1.0000000000", "gross": "1.1900000000000000"}})
		locs = append(locs, map[string]any{"id": locations[l], "name": l, "deprecation": nil,
			"available": !slices.Contains(t.Unsold, l), "recommended": false})
	}
	return map[string]any{"id": id, "name": t.Name, "description": strings.ToUpper(t.Name), "category": "shared",
		"cores": t.Cores, "memory": t.Memory, "disk": t.Disk, "storage_type": "local", "cpu_type": "shared",
		"architecture": arch, "deprecated": false, "deprecation": nil, "prices": prices, "locations": locs}
}

func money(v float64) string { return strconv.FormatFloat(v, 'f', 10, 64) }

func systemImageJSON() map[string]any {
	return map[string]any{"id": SystemImageID, "type": "system", "status": "available", "name": SystemImage,
		"description": "Debian 12", "image_size": nil, "disk_size": 5, "created": "2023-06-13T06:00:02Z",
		"created_from": nil, "bound_to": nil, "os_flavor": "debian", "os_version": "12", "architecture": "x86",
		"rapid_deploy": true, "protection": map[string]any{"delete": false}, "deprecated": nil, "deleted": nil,
		"labels": map[string]string{}}
}

func imageJSON(im *image) map[string]any {
	labels := im.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return map[string]any{"id": im.ID, "type": "snapshot", "status": im.Status, "name": nil,
		"description": im.Description, "image_size": nil, "disk_size": 40, "created": im.Created.UTC().Format(time.RFC3339),
		"created_from": map[string]any{"id": im.From, "name": fmt.Sprint(im.From)}, "bound_to": nil,
		"os_flavor": "debian", "os_version": nil, "architecture": "x86", "rapid_deploy": false,
		"protection": map[string]any{"delete": false}, "deprecated": nil, "deleted": nil, "labels": labels}
}

func (f *Fake) serverJSON(s *Server) map[string]any {
	t, tid, _ := f.findType(idOrName{Name: s.Type})
	var img any
	if s.ImageID == SystemImageID {
		img = systemImageJSON()
	} else if im := f.images[s.ImageID]; im != nil {
		img = imageJSON(im)
	} else {
		img = map[string]any{"id": s.ImageID, "type": "snapshot", "status": "available", "name": nil}
	}
	var ipv4 any
	if s.IPv4 != "" {
		ipv4 = map[string]any{"id": s.ID + 1_000_000, "ip": s.IPv4, "blocked": false, "dns_ptr": "static.example"}
	}
	return map[string]any{"id": s.ID, "name": s.Name, "status": s.Status, "created": s.Created.UTC().Format(time.RFC3339),
		"public_net":  map[string]any{"ipv4": ipv4, "ipv6": nil, "floating_ips": []int64{}, "firewalls": []any{}},
		"private_net": []any{}, "server_type": typeJSON(tid, t), "location": locationJSON(s.Location),
		"image": img, "iso": nil, "rescue_enabled": false, "locked": false, "backup_window": nil,
		"outgoing_traffic": 0, "ingoing_traffic": 0, "included_traffic": 21990232555520,
		"protection": map[string]any{"delete": false, "rebuild": false}, "labels": s.Labels,
		"volumes": []int64{}, "load_balancers": []int64{}, "primary_disk_size": t.Disk, "placement_group": nil}
}
