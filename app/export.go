package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"geca/internal/npy"
	"geca/internal/safefile"
	"geca/render"
)

// exportScale enlarges a grid to about 512 pixels on its long side.
func exportScale(w, h int) int { return max(1, 512/max(w, h, 1)) }

// exportPath returns a new file name in the export folder.
func (u *UI) exportPath(kind, ext string) string {
	name := fmt.Sprintf("geca-%s-%s%s", kind, time.Now().Format("20060102-150405.000"), ext)
	name = strings.NewReplacer(" ", "_", "|", "", "/", "_").Replace(name)
	return filepath.Join(u.opt.ExportDir, name)
}

// Stamp is what made an export: the model, the view, and each pane's run
// and position. It goes into PNG text chunks and a JSON sidecar.
type Stamp struct {
	Software   string      `json:"software"`
	Kind       string      `json:"kind"`
	Checkpoint string      `json:"checkpoint"`
	SHA256     string      `json:"checkpoint_sha256"`
	View       string      `json:"view"`
	Panes      []PaneStamp `json:"panes"`
	Note       string      `json:"note,omitempty"`
}

// PaneStamp is one pane's run and position; Step counts from 1, Update from
// 0 (0: the start of the timestep), as the window does.
type PaneStamp struct {
	Label   string  `json:"label,omitempty"`
	Run     string  `json:"run"`
	Step    int     `json:"step"`
	Steps   string  `json:"steps"`
	Update  int     `json:"update"`
	M       int     `json:"M"`
	CFG     float32 `json:"cfg"`
	GHG     bool    `json:"ghg"`
	Rate    float32 `json:"update_rate"`
	Seed    uint64  `json:"seed"`
	Labels  []int   `json:"labels"`
	Classes string  `json:"classes,omitempty"`
	T       int     `json:"t"`
	Final   bool    `json:"final,omitempty"`
}

// stamp describes the current export of kind with the given panes' frames.
func (u *UI) stamp(kind string, frames []*Frame, ks, us []int) Stamp {
	s := u.snap
	st := Stamp{Software: "geca view", Kind: kind, Checkpoint: s.Stamp.Name, SHA256: s.Stamp.Hash, View: viewName(u.view, u.snap.Cfg.Prediction)}
	if st.Checkpoint == "" {
		st.Checkpoint = s.Model
	}
	for i, p := range s.Panes {
		ps := PaneStamp{Label: p.Label, Run: p.RunLabel, Step: ks[i] + 1, Steps: p.Settings.Steps, Update: us[i],
			M: p.Settings.M, CFG: p.Settings.CFG, GHG: p.Settings.GHG, Rate: p.Settings.Rate, Seed: p.Settings.Seed,
			Labels: p.Settings.Labels}
		if ps.Labels == nil {
			ps.Labels = []int{}
		}
		if f := frames[i]; f != nil {
			ps.T, ps.Final, ps.M = f.T, f.Done, f.M
		}
		if len(s.Classes) == s.Cfg.NumClasses {
			var names []string
			for _, l := range p.Settings.Labels {
				names = append(names, s.Classes[l])
			}
			ps.Classes = strings.Join(names, " + ")
		}
		st.Panes = append(st.Panes, ps)
	}
	return st
}

// pngText flattens a stamp into PNG text keywords ("geca:M", or
// "geca:pane2:M" in compare mode) and the whole stamp as JSON under "geca".
func (st Stamp) pngText() map[string]string {
	t := map[string]string{"Software": "geca view", "geca:checkpoint": st.Checkpoint, "geca:checkpoint-sha256": st.SHA256,
		"geca:view": st.View}
	for i, p := range st.Panes {
		pre := "geca:"
		if len(st.Panes) > 1 {
			pre = fmt.Sprintf("geca:pane%d:", i+1)
			t[pre+"label"] = p.Label
		}
		t[pre+"run"] = p.Run
		t[pre+"step"] = strconv.Itoa(p.Step)
		t[pre+"steps"] = p.Steps
		t[pre+"update"] = strconv.Itoa(p.Update)
		t[pre+"M"] = strconv.Itoa(p.M)
		t[pre+"CFG"] = strconv.FormatFloat(float64(p.CFG), 'g', -1, 32)
		t[pre+"GHG"] = strconv.FormatBool(p.GHG)
		t[pre+"rate"] = strconv.FormatFloat(float64(p.Rate), 'g', -1, 32)
		t[pre+"seed"] = strconv.FormatUint(p.Seed, 10)
		t[pre+"labels"] = labelList(p.Labels)
		if p.Classes != "" {
			t[pre+"classes"] = p.Classes
		}
	}
	if b, err := json.Marshal(st); err == nil {
		t["geca"] = string(b)
	}
	return t
}

func labelList(ls []int) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = strconv.Itoa(l)
	}
	return strings.Join(parts, ",")
}

// writeSidecar writes the stamp as path.json, whole or not at all.
func writeSidecar(path string, st Stamp) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return safefile.WriteBytes(path+".json", append(b, '\n'))
}

// exportFrame makes the picture of one moment: the view of each pane,
// upscaled, side by side with their labels in compare mode.
func exportFrame(sn *Snapshot, v render.View, ch int, hidden [3]int, frames []*Frame, labels []string) (image.Image, error) {
	cfg := sn.Cfg
	sc := exportScale(cfg.GridW, cfg.GridH)
	var tiles []image.Image
	for _, f := range frames {
		if f == nil {
			return nil, fmt.Errorf("no frame")
		}
		img, err := render.Render(v, source(cfg, f), render.Options{Channel: ch, Hidden: hidden, Preview: sn.Preview})
		if err != nil {
			return nil, err
		}
		tiles = append(tiles, img)
	}
	if len(tiles) == 1 {
		return render.Upscale(tiles[0], sc), nil
	}
	return render.Montage([][]image.Image{tiles}, nil, labels, sc), nil
}

// shown returns each pane's frame and position as the window shows them.
func (u *UI) shown() (frames []*Frame, ks, us []int, labels []string) {
	for i, p := range u.snap.Panes {
		f, k, uu := u.paneFrame(i)
		frames, ks, us, labels = append(frames, f), append(ks, k), append(us, uu), append(labels, p.Label)
	}
	return
}

// done reports a finished export in the status line.
func (u *UI) exported(what string) func(error) {
	return func(err error) {
		if err != nil {
			u.say(true, "%s: %v", what, err)
			return
		}
		u.say(false, "wrote %s", what)
	}
}

func (u *UI) exportPNG() {
	sn := u.snap
	v, ch, hid := u.view, u.channel, u.hidden
	frames, ks, us, labels := u.shown()
	st := u.stamp("png", frames, ks, us)
	path := u.exportPath(v.String(), ".png")
	u.bg.Go("PNG", func(*job) error {
		img, err := exportFrame(sn, v, ch, hid, frames, labels)
		if err != nil {
			return err
		}
		if err := render.WritePNGText(path, img, st.pngText()); err != nil {
			return err
		}
		return writeSidecar(path, st)
	}, u.exported(path))
}

// exportGIF writes the growth inside the current timestep (every update) or
// across the run (the last frame of every timestep), in the current view. It
// runs in the background with its progress in the status line, renders one
// frame at a time and writes the file whole or not at all.
func (u *UI) exportGIF(run bool) {
	sn := u.snap
	v, ch, hid := u.view, u.channel, u.hidden
	frames, ks, us, labels := u.shown()
	k := ks[sn.Active]
	kind := v.String() + "-step"
	if run {
		kind = v.String() + "-run"
	}
	st := u.stamp("gif", frames, ks, us)
	// moment i, pane p: the frame to draw
	var n int
	var at func(i, p int) *Frame
	if run {
		for _, p := range sn.Panes {
			n = max(n, len(p.Timeline))
		}
		st.Note = "one frame per timestep: the last update of each"
		at = func(i, p int) *Frame {
			tl := sn.Panes[p].Timeline
			return tl[min(i, len(tl)-1)].Last()
		}
	} else {
		for _, p := range sn.Panes {
			n = max(n, len(p.Timeline[min(k, len(p.Timeline)-1)].Frames))
		}
		st.Note = fmt.Sprintf("every update of step %d", k+1)
		at = func(i, p int) *Frame {
			tl := sn.Panes[p].Timeline
			rec := tl[min(k, len(tl)-1)]
			f := rec.Frames[min(i, len(rec.Frames)-1)]
			if f == nil {
				f = rec.Last() // evicted: the GIF holds what is recorded
			}
			return f
		}
	}
	delay := 12
	if run {
		delay = max(4, 400/max(n, 1))
	}
	path := u.exportPath(kind, ".gif")
	u.bg.Go("GIF", func(j *job) error {
		j.Progress(0, n)
		err := render.WriteGIFStream(path, n, func(i int) (image.Image, error) {
			exportHook(i)
			fs := make([]*Frame, len(sn.Panes))
			for p := range fs {
				fs[p] = at(i, p)
			}
			return exportFrame(sn, v, ch, hid, fs, labels)
		}, delay, func(i int) { j.Progress(i+1, n) })
		if err != nil {
			return err
		}
		return writeSidecar(path, st)
	}, u.exported(fmt.Sprintf("%s (%d frames)", path, n)))
}

// exportHook runs before each GIF frame is made; tests hold an export
// midway with it.
var exportHook = func(frame int) {}

// exportNPY writes the cell grid of the active pane as (B, C, H, W) float32.
func (u *UI) exportNPY() {
	frames, ks, us, _ := u.shown()
	f := frames[u.snap.Active]
	if f == nil || f.State == nil {
		u.say(true, "no grid to export")
		return
	}
	st := u.stamp("npy", frames, ks, us)
	path := u.exportPath(fmt.Sprintf("grid-step%d-update%d", ks[u.snap.Active]+1, us[u.snap.Active]), ".npy")
	g := f.State
	u.bg.Go(".npy", func(*job) error {
		if err := npy.WriteFile(path, []int{g.B, g.C, g.H, g.W}, g.ToNCHW()); err != nil {
			return err
		}
		return writeSidecar(path, st)
	}, u.exported(fmt.Sprintf("%s (B, C, H, W) = (%d, %d, %d, %d)", path, g.B, g.C, g.H, g.W)))
}

// growthCSV writes the per-update numbers of every pane's timeline: one row
// per recorded update.
func growthCSV(sn *Snapshot) []byte {
	var b bytes.Buffer
	b.WriteString("pane,run,step,t,sigma,M,update,mean_abs_update,reached,seed_influence,mean_abs_eps\n")
	num := func(v float32) string {
		if v != v {
			return ""
		}
		return strconv.FormatFloat(float64(v), 'g', 6, 32)
	}
	for i, p := range sn.Panes {
		name := p.Label
		if name == "" {
			name = strconv.Itoa(i + 1)
		}
		for _, rec := range p.Timeline {
			for uu := range rec.MeanMag {
				fmt.Fprintf(&b, "%s,%s,%d,%d,%s,%d,%d,%s,%s,%s,%s\n", csvField(name), csvField(p.RunLabel), rec.Index+1, rec.T,
					strconv.FormatFloat(rec.Sigma, 'g', 6, 64), rec.M, uu, num(rec.MeanMag[uu]), num(rec.Reached[uu]),
					num(rec.Spread[uu]), num(rec.MeanEps[uu]))
			}
		}
	}
	return b.Bytes()
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// exportCSV writes the growth curves and per-step numbers of every pane.
func (u *UI) exportCSV() {
	sn := u.snap
	frames, ks, us, _ := u.shown()
	st := u.stamp("csv", frames, ks, us)
	st.Note = "one row per recorded update of every pane's timeline; step counts from 1, update 0 is a timestep's start"
	path := u.exportPath("growth", ".csv")
	u.bg.Go("CSV", func(*job) error {
		if err := safefile.WriteBytes(path, growthCSV(sn)); err != nil {
			return err
		}
		return writeSidecar(path, st)
	}, u.exported(path))
}
