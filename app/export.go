package app

import (
	"fmt"
	"image"
	"path/filepath"
	"strings"
	"time"

	"gioui.org/f32"
	"gioui.org/op"

	"geca/internal/npy"
	"geca/render"
)

func opAffineAt(gtx C, x, y int, sx, sy float32) op.TransformStack {
	return op.Affine(f32.Affine2D{}.Scale(f32.Point{}, f32.Pt(sx, sy)).Offset(f32.Pt(float32(x), float32(y)))).Push(gtx.Ops)
}

// exportScale enlarges a grid to about 512 pixels on its long side.
func exportScale(w, h int) int { return max(1, 512/max(w, h, 1)) }

// exportPath returns a new file name in the export folder.
func (u *UI) exportPath(kind, ext string) string {
	name := fmt.Sprintf("geca-%s-%s%s", kind, time.Now().Format("20060102-150405.000"), ext)
	name = strings.ReplaceAll(name, " ", "_")
	return filepath.Join(u.opt.ExportDir, name)
}

// paneImages renders view v of the given frames, one per pane (nil frames skipped).
func exportRender(sn *Snapshot, v render.View, ch int, hidden [3]int, f *Frame) (*image.RGBA, error) {
	if f == nil {
		return nil, fmt.Errorf("no frame")
	}
	return render.Render(v, source(sn.Cfg, f), render.Options{Channel: ch, Hidden: hidden, Preview: sn.Preview})
}

// exportFrame makes the picture of one moment: the view of each pane, upscaled,
// side by side with their labels in compare mode.
func exportFrame(sn *Snapshot, v render.View, ch int, hidden [3]int, frames []*Frame, labels []string) (image.Image, error) {
	cfg := sn.Cfg
	sc := exportScale(cfg.GridW, cfg.GridH)
	var tiles []image.Image
	for _, f := range frames {
		img, err := exportRender(sn, v, ch, hidden, f)
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

func (u *UI) exportPNG() {
	sn := u.snap
	v, ch, hid := u.view, u.channel, u.hidden
	var frames []*Frame
	var labels []string
	for i, p := range sn.Panes {
		f, _, _ := u.paneFrame(i)
		frames = append(frames, f)
		labels = append(labels, p.Label)
	}
	path := u.exportPath(v.String(), ".png")
	go func() {
		img, err := exportFrame(sn, v, ch, hid, frames, labels)
		if err == nil {
			err = render.WritePNG(path, img)
		}
		if err != nil {
			u.say(true, "PNG export: %v", err)
			return
		}
		u.say(false, "wrote %s", path)
	}()
}

// exportGIF writes the growth inside the current timestep (every update) or
// across the run (the last frame of every timestep), in the current view.
func (u *UI) exportGIF(run bool) {
	sn := u.snap
	v, ch, hid := u.view, u.channel, u.hidden
	_, k, _ := u.paneFrame(sn.Active)
	kind := v.String() + "-step"
	if run {
		kind = v.String() + "-run"
	}
	path := u.exportPath(kind, ".gif")
	go func() {
		// moments[t][pane]
		var moments [][]*Frame
		var labels []string
		for _, p := range sn.Panes {
			labels = append(labels, p.Label)
		}
		if run {
			n := 0
			for _, p := range sn.Panes {
				n = max(n, len(p.Timeline))
			}
			for t := 0; t < n; t++ {
				var fs []*Frame
				for _, p := range sn.Panes {
					fs = append(fs, p.Timeline[min(t, len(p.Timeline)-1)].Last())
				}
				moments = append(moments, fs)
			}
		} else {
			n := 0
			for _, p := range sn.Panes {
				n = max(n, len(p.Timeline[min(k, len(p.Timeline)-1)].Frames))
			}
			for m := 0; m < n; m++ {
				var fs []*Frame
				for _, p := range sn.Panes {
					rec := p.Timeline[min(k, len(p.Timeline)-1)]
					f := rec.Frames[min(m, len(rec.Frames)-1)]
					if f == nil {
						f = rec.Last()
					}
					fs = append(fs, f)
				}
				moments = append(moments, fs)
			}
		}
		var imgs []image.Image
		for _, fs := range moments {
			img, err := exportFrame(sn, v, ch, hid, fs, labels)
			if err != nil {
				u.say(true, "GIF export: %v", err)
				return
			}
			imgs = append(imgs, img)
		}
		delay := 12
		if run {
			delay = max(4, 400/max(len(imgs), 1))
		}
		if err := render.WriteGIF(path, imgs, delay); err != nil {
			u.say(true, "GIF export: %v", err)
			return
		}
		u.say(false, "wrote %s (%d frames)", path, len(imgs))
	}()
}

// exportNPY writes the cell grid of the active pane as (B, C, H, W) float32.
func (u *UI) exportNPY() {
	sn := u.snap
	f, k, uu := u.paneFrame(sn.Active)
	if f == nil || f.State == nil {
		u.say(true, "no grid to export")
		return
	}
	path := u.exportPath(fmt.Sprintf("grid-step%d-update%d", k+1, uu), ".npy")
	st := f.State
	go func() {
		if err := npy.WriteFile(path, []int{st.B, st.C, st.H, st.W}, st.ToNCHW()); err != nil {
			u.say(true, ".npy export: %v", err)
			return
		}
		u.say(false, "wrote %s (B, C, H, W) = (%d, %d, %d, %d)", path, st.B, st.C, st.H, st.W)
	}()
}
