package app

import (
	"image"
	"math"
	"sync"
	"time"

	"gioui.org/op/paint"

	"geca/engine"
	"geca/render"
)

// imgKey names one rendered view of one frame.
type imgKey struct {
	frame   *Frame
	view    render.View
	channel int
	hidden  [3]int
	decoded *Frame // the frame a VAE decode shows (nil: none)
	dim     bool   // cells outside the seed's reach dimmed
	other   *Frame // the second frame of a difference
}

type imgEntry struct {
	img  *image.RGBA
	op   paint.ImageOp
	err  error
	used bool
	// note says what the image shows when that is not the frame itself
	// (a VAE decode of an earlier update, the scale of a difference).
	note string
	// scale is the end of the colour scale of a difference image.
	scale float32
}

// imageCache keeps the images drawn in the last frames; an entry not used
// during a frame is dropped at its end.
type imageCache struct {
	m map[imgKey]*imgEntry
}

func newImageCache() *imageCache { return &imageCache{m: map[imgKey]*imgEntry{}} }

func (c *imageCache) beginFrame() {
	for _, e := range c.m {
		e.used = false
	}
}

func (c *imageCache) endFrame() {
	for k, e := range c.m {
		if !e.used {
			delete(c.m, k)
		}
	}
}

func newEntry(img *image.RGBA, err error) *imgEntry {
	e := &imgEntry{img: img, err: err, used: true}
	if img != nil {
		e.op = paint.NewImageOp(img)
		e.op.Filter = paint.FilterNearest
	}
	return e
}

// get returns the cached image of k, making it with mk when missing.
func (c *imageCache) get(k imgKey, mk func() (*image.RGBA, error)) *imgEntry {
	if e, ok := c.m[k]; ok {
		e.used = true
		return e
	}
	img, err := mk()
	e := newEntry(img, err)
	c.m[k] = e
	return e
}

// stepKey names one timestep of one run.
type stepKey struct {
	run, k int
}

// decodeCache runs the full VAE decode of x₀ off the UI goroutine, one frame
// at a time, the newest request winning. While playing it decodes at most
// once per timestep, and after each decode rests as long as the decode took,
// so the decoder (seconds per image on a CPU) takes at most half the
// machine from the engine; the window shows the cheap preview or the last
// decode of the timestep meanwhile. Paused, it decodes the frame shown.
type decodeCache struct {
	restUntil  time.Time // while playing, no decode starts before
	mu         sync.Mutex
	done       map[*Frame]*image.RGBA
	order      []*Frame
	byStep     map[stepKey]*Frame // the latest decoded frame of a timestep
	started    map[stepKey]bool   // timesteps whose decode has started
	running    *Frame
	want       *Frame
	wantStep   stepKey
	invalidate func()
	decodes    int  // decodes started (for tests and the benchmark)
	playing    bool // as of the last request
}

func newDecodeCache(inv func()) *decodeCache {
	return &decodeCache{done: map[*Frame]*image.RGBA{}, byStep: map[stepKey]*Frame{}, started: map[stepKey]bool{}, invalidate: inv}
}

func (d *decodeCache) pending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running != nil
}

// get returns the decoded image to show for frame f of timestep sk and the
// frame it was decoded from (f itself, or while playing an earlier update
// of the same timestep), or nil while none is ready.
func (d *decodeCache) get(f *Frame, sk stepKey, playing bool, cfg engine.Config, decode func([]float32, int, int) ([]float32, error)) (*image.RGBA, *Frame) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.playing = playing
	if img, ok := d.done[f]; ok {
		return img, f
	}
	if playing {
		if d.started[sk] || time.Now().Before(d.restUntil) {
			if of := d.byStep[sk]; of != nil {
				return d.done[of], of
			}
			return nil, nil
		}
	}
	d.want, d.wantStep = f, sk
	if d.running == nil {
		d.start(f, sk, cfg, decode)
	}
	if playing {
		return nil, nil
	}
	if of := d.byStep[sk]; of != nil { // paused: the nearest decode until the exact one is ready
		return d.done[of], of
	}
	return nil, nil
}

func (d *decodeCache) start(f *Frame, sk stepKey, cfg engine.Config, decode func([]float32, int, int) ([]float32, error)) {
	d.running = f
	d.started[sk] = true
	d.decodes++
	go func() {
		start := time.Now()
		img := decodeImage(f, cfg, decode)
		d.mu.Lock()
		d.restUntil = time.Now().Add(time.Since(start))
		d.done[f] = img
		d.byStep[sk] = f
		d.order = append(d.order, f)
		if len(d.order) > 64 {
			delete(d.done, d.order[0])
			d.order = d.order[1:]
		}
		d.running = nil
		if next := d.want; next != nil && next != f && !d.playing {
			if _, ok := d.done[next]; !ok {
				d.start(next, d.wantStep, cfg, decode)
			}
		}
		d.mu.Unlock()
		if d.invalidate != nil {
			d.invalidate()
		}
	}()
}

// decodeImage decodes the x₀ of frame f to an image (nil when it fails).
func decodeImage(f *Frame, cfg engine.Config, decode func([]float32, int, int) ([]float32, error)) *image.RGBA {
	n := cfg.InChannels * cfg.Cells()
	if len(f.X0) < n {
		return nil
	}
	rgb, err := decode(f.X0[:n], cfg.GridH, cfg.GridW)
	if err != nil || len(rgb)%3 != 0 {
		return nil
	}
	side := int(math.Sqrt(float64(len(rgb)/3) / float64(cfg.GridH*cfg.GridW)))
	if side <= 0 || len(rgb) != 3*side*side*cfg.Cells() {
		return nil
	}
	return render.PixelImage(rgb, 3, cfg.GridH*side, cfg.GridW*side, 0)
}

// Decodes is how many decodes have started.
func (d *decodeCache) Decodes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.decodes
}
