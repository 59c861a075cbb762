package app

import (
	"context"
	"strconv"
	"testing"
	"time"

	"geca/engine"
	"geca/engine/vae"
	"geca/internal/guitest"
	"geca/render"
)

// BenchmarkPlaybackDecoded plays a model of GeCA-XS size (random weights,
// 32x32x4 latents) at full speed on the runner's goroutine while the window
// lays out a frame every 16 ms in the x₀ view, once through the cheap
// preview and once through a VAE decoder of SD size (random weights,
// 256x256 images), and reports the update rate the runner achieves and the
// decodes started. b.N is the number of cell updates:
//
//	go test -tags openblas ./app -run XXX -bench PlaybackDecoded -benchtime 300x
func BenchmarkPlaybackDecoded(b *testing.B) {
	cfg, err := engine.Preset("GeCA-XS", 10)
	if err != nil {
		b.Fatal(err)
	}
	model, err := engine.NewRandomModel(cfg, 1, 0.5)
	if err != nil {
		b.Fatal(err)
	}
	dec, err := vae.NewRandomDecoder(vae.DefaultConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, decoded := range []bool{false, true} {
		name := "view=preview"
		if decoded {
			name = "view=vae-decode"
		}
		b.Run(name, func(b *testing.B) {
			eng := &ModelEngine{Model: model, VAE: dec, Label: "GeCA-XS (random)", Random: true}
			s := DefaultSettings(cfg)
			s.Steps = strconv.Itoa(b.N/(s.M+1) + 2)
			ctrl, err := NewController(eng, s)
			if err != nil {
				b.Fatal(err)
			}
			r := NewRunner(eng, ctrl, nil, nil)
			r.speed = 0
			win := guitest.New(b, 1280, 800)
			ui := NewUI(r, Options{Shaper: guitest.NewShaper()})
			ui.setView(render.ViewX0)
			ui.decoded = decoded
			win.Frame(ui.Layout)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { r.Run(ctx); close(done) }()
			defer func() { cancel(); r.Send(ClearError{}); <-done }()
			updates := func() int {
				p := r.Snapshot().Panes[0]
				return p.K*(s.M+1) + p.U
			}
			b.ResetTimer()
			start := time.Now()
			r.Send(Play{On: true})
			for updates() < b.N {
				win.Frame(ui.Layout)
				time.Sleep(16 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(updates())/elapsed.Seconds(), "updates/s")
			b.ReportMetric(float64(ui.decodes.Decodes()), "decodes")
		})
	}
}
