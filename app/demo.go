package app

import (
	"fmt"

	"geca/render"
)

// demoSpeed is the demo preset's play rate: slow enough to follow the seed's
// information one cell per update.
const demoSpeed = 4

// demoPreset switches to the demo preset (docs/viewer.md): a fresh run of
// the current model from its start with GHG on, the seed-influence view,
// a slow speed, large counters and captions, and the damage brush on the
// image. Pressed again, it leaves the preset.
func demoPreset() Cmd {
	return windowCmd(func(u *UI) {
		if u.demo {
			u.demo = false
			u.brushOn = false
			u.syncInfluence()
			return
		}
		u.demo = true
		u.brushOn, u.brush = true, BrushBlank
		u.radius = 1.5
		u.setView(render.ViewInfluence)
		s := u.snap.Base
		s.GHG = true
		u.do(Compare{}, SetInfluence{On: true}, Restart{Settings: &s, Label: "demo"}, SetSpeed{UpdatesPerSecond: demoSpeed},
			Play{On: true})
	})
}

// demoCaption says in a sentence what the audience sees at frame f.
func demoCaption(s *Snapshot, p PaneSnap, f *Frame) string {
	if f == nil {
		return ""
	}
	switch {
	case f.Done:
		what := "an image"
		if len(p.Settings.Labels) == 1 && len(s.Classes) == s.Cfg.NumClasses {
			what = "a " + s.Classes[p.Settings.Labels[0]]
		}
		return fmt.Sprintf("Done: the noise has become %s. Drag on the image (key 1) to damage it; go back a step (←) and watch it regrow.", what)
	case f.Index == 0 && f.Update == 0:
		return "The seed: one pix-cell at the centre holds random values. Every other cell is blank and sees only the noise."
	case f.Update == 0:
		if p.Settings.GHG {
			return fmt.Sprintf("Timestep %d: the cells keep what they grew (GHG); the seed cell's news spreads again, one cell per update.", f.Index+1)
		}
		return fmt.Sprintf("Timestep %d: the grid starts again from a single seed cell.", f.Index+1)
	case f.Update == f.M:
		return fmt.Sprintf("After %d updates the cells predict the noise; next, one denoising step removes a little of it.", f.M)
	}
	return fmt.Sprintf("Update %d: each cell sees only its 3×3 neighbours, so the seed's information is at most %d cells away.", f.Update, f.Update)
}
