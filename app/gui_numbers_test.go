package app

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gioui.org/io/key"

	"geca/assets"
	"geca/internal/guitest"
	"geca/render"
)

// M, CFG and the update rate take typed values, checked.
func TestGUITypedSettings(t *testing.T) {
	h := demoHarness(t)
	h.typeInto("M updates", "37")
	if s := h.snap().Settings; s.M != 37 || h.snap().Panes[0].RunLabel != "M=37 @ step 1" {
		t.Errorf("typed M 37: M %d, run %q", s.M, h.snap().Panes[0].RunLabel)
	}
	for _, bad := range []struct{ field, text, says string }{
		{"M updates", "0", "M updates: 0 is outside [1, 10000]"},
		{"M updates", "2.5", "not a whole number"},
		{"update rate", "1.5", "update rate: 1.5 is outside"},
		{"CFG scale", "lots", `CFG scale: "lots" is not a number`},
	} {
		t.Run(bad.field+"="+bad.text, func(t *testing.T) {
			runs := len(h.snap().Runs)
			h.typeInto(bad.field, bad.text)
			if m, isErr := h.message(), h.ui.msg.err; !isErr || !strings.Contains(m, bad.says) {
				t.Errorf("%s %q: message %q (error %v)", bad.field, bad.text, m, isErr)
			}
			if len(h.snap().Runs) != runs {
				t.Errorf("%s %q made a run", bad.field, bad.text)
			}
			h.key(key.NameEscape, 0)
		})
	}
	h.typeInto("CFG scale", "2.75")
	h.typeInto("update rate", "0.3")
	if s := h.snap().Settings; s.CFG != 2.75 || math.Abs(float64(s.Rate)-0.3) > 1e-6 || s.M != 37 {
		t.Errorf("typed CFG 2.75 and rate 0.3: %+v", s)
	}
	h.typeInto("CFG scale", "off")
	if s := h.snap().Settings; s.CFG != 1 {
		t.Errorf("CFG off: %v", s.CFG)
	}
}

// The inspector tells the values under the pointer: a hovered cell's, and
// a bar's.
func TestGUIInspectorValuesOnHover(t *testing.T) {
	h := demoHarness(t)
	h.key(key.NameRightArrow, 0)
	h.win.Move(h.ui.CellCentre(0, 16, 16))
	h.frame()
	f := h.snap().Panes[0].Frame
	want := cellSummary(h.snap().Cfg, f, 16, 16)
	if !h.win.HasLabel(want) || !h.win.HasLabel("hovered cell (16, 16)") {
		t.Errorf("hovering cell (16, 16): no %q in %q", want, h.win.Labels())
	}
	h.win.Click(h.ui.CellCentre(0, 16, 16))
	h.frame()
	r, ok := h.win.Find("chart hidden (16)")
	if !ok {
		t.Fatal("no hidden chart")
	}
	// bar 5 of 16
	h.win.Move(image.Pt(r.Min.X+r.Dx()*5/16+r.Dx()/32, r.Min.Y+r.Dy()/2))
	h.frame()
	hid := f.State.Cell(0, 16, 16)[1+2:]
	if s := "h[5] = " + strconv.FormatFloat(float64(hid[5]), 'g', 4, 32); !h.win.HasLabel(s) {
		t.Errorf("hovering bar 5: no %q in %q", s, h.win.Labels())
	}
}

// The selected cell's attention is there when scrubbing back through
// history, recomputed exactly as recorded.
func TestGUIAttentionWhenScrubbing(t *testing.T) {
	h := demoHarness(t)
	for i := 0; i < 6; i++ {
		h.key(key.NameRightArrow, 0)
	}
	recorded := h.snap().Panes[0].Timeline[0].Frames[3]
	h.key("I", key.ModShift) // the reach overlay: these frames are recomputed with the influence first
	h.win.Click(h.ui.CellCentre(0, 16, 17))
	h.frame()
	if f := h.snap().Panes[0].Frame; len(f.Attn) == 0 || f.AttnCell != [2]int{16, 17} {
		t.Errorf("the shown frame has no attention for the cell just selected")
	}
	for i := 0; i < 3; i++ {
		h.key(key.NameLeftArrow, 0)
	}
	f := h.snap().Panes[0].Frame
	cfg := h.snap().Cfg
	if f.Update != 3 || len(f.Attn) != cfg.Heads*9 || f.AttnCell != [2]int{16, 17} {
		t.Fatalf("scrubbed to update %d: %d attention weights for %v", f.Update, len(f.Attn), f.AttnCell)
	}
	if !slices.Equal(f.State.Data, recorded.State.Data) || !slices.Equal(f.X0, recorded.X0) {
		t.Error("the recomputed frame differs from the recorded one")
	}
	var sum float32
	for _, a := range f.Attn[:9] {
		sum += a
	}
	if !(math.Abs(float64(sum)-1) <= 1e-4) {
		t.Errorf("head 0's attention sums to %v", sum)
	}
	if !h.win.HasLabel("3x3 attention per head") {
		t.Error("the inspector shows no attention")
	}
}

// Compare from the start runs every pane on the same initial noise from
// step 1; compare from here branches at the current step. Panes show
// their numbers, and a difference pane subtracts two of them.
func TestGUICompareModes(t *testing.T) {
	h := tallDemoHarness(t)
	for i := 0; i < 3; i++ {
		h.key("T", 0)
	}
	h.click("from here")
	s := h.snap()
	if len(s.Panes) != 3 || s.Compare.FromStart || s.Panes[0].K != 3 || s.Panes[0].RunLabel != "M=6 @ step 4" {
		t.Fatalf("compare from here: %d panes at step %d, %q", len(s.Panes), s.Panes[0].K+1, s.Panes[0].RunLabel)
	}
	h.click("from the start")
	s = h.snap()
	if !s.Compare.FromStart || s.Panes[0].K != 0 || s.Panes[2].K != 0 || s.Panes[1].RunLabel != "M=12 @ step 1" {
		t.Fatalf("compare from the start: at step %d, %q", s.Panes[0].K+1, s.Panes[1].RunLabel)
	}
	if !slices.Equal(s.Panes[0].Frame.Xt, s.Panes[2].Frame.Xt) {
		t.Error("the panes do not start on the same noise")
	}
	for i := 0; i < 10; i++ {
		h.key(key.NameRightArrow, 0)
	}
	s = h.snap()
	if s.Panes[0].U != 6 || s.Panes[1].U != 10 {
		t.Fatalf("lock-step: updates %d and %d", s.Panes[0].U, s.Panes[1].U)
	}
	for p := range s.Panes {
		rec := s.Panes[p].Timeline[0]
		want := "|" + predSymbol(s.Cfg.Prediction) + "| " + strconv.FormatFloat(float64(rec.MeanEps[s.Panes[p].U]), 'f', 3, 32)
		if !h.win.HasLabel(want) {
			t.Errorf("pane %d: no %q", p, want)
		}
	}
	h.key("1", 0)
	h.click("difference")
	if !h.ui.diff {
		t.Fatal("no difference pane")
	}
	img := h.shot("compare-difference")
	a, b := s.Panes[0].Frame, s.Panes[1].Frame
	want, lim, err := render.Difference(render.ViewX0, source(s.Cfg, a), source(s.Cfg, b), 0)
	if err != nil || lim == 0 {
		t.Fatalf("difference: %v, %v", err, lim)
	}
	dv := &h.ui.canvas.diff
	for _, ij := range [][2]int{{0, 0}, {16, 16}, {10, 20}} {
		x := dv.screen.X + int(dv.origin.X+(float32(ij[1])+0.5)*dv.cell)
		y := dv.screen.Y + int(dv.origin.Y+(float32(ij[0])+0.5)*dv.cell)
		if got := img.RGBAAt(x, y); !guitest.Near(got, want.RGBAAt(ij[1], ij[0]), 3) {
			t.Errorf("difference pane cell %v drawn %v, want %v", ij, got, want.RGBAAt(ij[1], ij[0]))
		}
	}
	if !h.win.HasLabel("difference · x₀ pred(M=6) − x₀ pred(M=12)") {
		t.Errorf("labels %q", h.win.Labels())
	}
}

// Plots have labelled axes and tell the values under the pointer.
func TestGUIPlotValues(t *testing.T) {
	h := tallDemoHarness(t)
	for i := 0; i < 6; i++ {
		h.key(key.NameRightArrow, 0)
	}
	for _, l := range []string{"100%", "0%", "update 0", "update 12", "step 1", "step 10"} {
		if !h.win.HasLabel(l) {
			t.Errorf("no axis label %q", l)
		}
	}
	r, ok := h.win.Find("plot growth")
	if !ok {
		t.Fatal("no growth plot")
	}
	// x position 3 of 0..12
	h.win.Move(image.Pt(r.Min.X+int(math.Round(float64(r.Dx())*3/12)), r.Min.Y+r.Dy()/2))
	h.frame()
	rec := h.snap().Panes[0].Timeline[0]
	want := "update 3:  reached " + strconv.Itoa(int(math.Round(float64(100*rec.Reached[3])))) + "%"
	if !h.win.HasLabel(want) {
		t.Errorf("hovering update 3: no %q in %q", want, h.win.Labels())
	}
}

// Every export says what made it: PNG text chunks and a JSON sidecar name
// the checkpoint and its hash, the position and the settings; the CSV holds
// the numbers of every recorded update.
func TestGUIExportsAreStamped(t *testing.T) {
	h := builtinHarness(t)
	h.key("T", 0)
	for i := 0; i < 3; i++ {
		h.key(key.NameRightArrow, 0)
	}
	h.key("P", 0)
	h.key("E", key.ModShift)
	h.waitJobs()
	dir := h.ui.opt.ExportDir
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	csvs, _ := filepath.Glob(filepath.Join(dir, "*.csv"))
	if len(pngs) != 1 || len(csvs) != 1 {
		t.Fatalf("exports: %v %v", pngs, csvs)
	}
	sum := sha256.Sum256(assets.FashionMNIST.Bytes)
	hash := hex.EncodeToString(sum[:])
	b, err := os.ReadFile(pngs[0])
	if err != nil {
		t.Fatal(err)
	}
	text, err := render.PNGText(b)
	if err != nil {
		t.Fatal(err)
	}
	s := h.snap().Settings
	for k, v := range map[string]string{"geca:checkpoint": "geca-fmnist.safetensors (built in)", "geca:checkpoint-sha256": hash,
		"geca:step": "2", "geca:update": "3", "geca:M": "8", "geca:CFG": strconv.FormatFloat(float64(s.CFG), 'g', -1, 32),
		"geca:GHG": "true", "geca:rate": "0.5", "geca:seed": "1", "geca:labels": "1", "geca:classes": "Trouser", "geca:steps": s.Steps} {
		if text[k] != v {
			t.Errorf("PNG text %s = %q, want %q", k, text[k], v)
		}
	}
	var st Stamp
	if b, err := os.ReadFile(pngs[0] + ".json"); err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("sidecar: %v", err)
	}
	if st.SHA256 != hash || st.Panes[0].Step != 2 || st.Panes[0].Update != 3 || st.Panes[0].M != 8 || st.View != "x₀ pred" {
		t.Errorf("sidecar %+v", st)
	}
	f, err := os.Open(csvs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	tl := h.snap().Panes[0].Timeline
	if len(rows) != 1+len(tl[0].Frames)+len(tl[1].Frames) || rows[0][7] != "mean_abs_update" {
		t.Fatalf("%d CSV rows, header %v", len(rows), rows[0])
	}
	last := rows[len(rows)-1] // step 2, update 3
	if last[2] != "2" || last[6] != "3" || last[8] != strconv.FormatFloat(float64(tl[1].Reached[3]), 'g', 6, 32) {
		t.Errorf("last CSV row %v", last)
	}
	if _, err := os.Stat(csvs[0] + ".json"); err != nil {
		t.Error("no sidecar for the CSV")
	}
}

// A grid that holds exploding values is flagged in the window, naming
// where it began.
func TestGUIWarnsOfExplodingValues(t *testing.T) {
	guitest.RequireRenderer(t)
	eng := newFakeEngine()
	eng.explode = &[2]int{1, 2}
	s := defaultTestSettings()
	s.Steps = "10"
	h := newHarness(t, eng, s)
	h.key("T", 0)
	h.key(key.NameRightArrow, 0)
	if h.win.HasLabel("⚠") {
		t.Error("a warning before anything went wrong")
	}
	for i := 0; i < 3; i++ {
		h.key(key.NameRightArrow, 0)
	}
	// where the grid first went beyond 1e4, from the recorded frames
	first := ""
	for _, f := range h.snap().Panes[0].Timeline[1].Frames {
		if first == "" && slices.ContainsFunc(f.State.Data, func(x float32) bool { return math.Abs(float64(x)) > 1e4 }) {
			first = StepLabel(f.Index, f.Update)
		}
	}
	if first == "" || !h.win.HasLabel("beyond 1e+04 first at "+first+" (") {
		t.Errorf("no warning naming %q: %q", first, h.win.Labels())
	}
}

// The history stays within the memory budget the user sets; the status
// line shows its use, and evicted frames come back exactly.
func TestGUIMemoryBudget(t *testing.T) {
	h := tallDemoHarness(t)
	h.typeInto("e.g. 512M", "3M")
	if b := h.snap().Budget; b != 3<<20 {
		t.Fatalf("budget %d", b)
	}
	h.key("T", 0)
	h.key(key.NameRightArrow, 0)
	h.key(key.NameRightArrow, 0)
	want := h.snap().Panes[0].Frame
	for i := 0; i < 6; i++ {
		h.key("T", 0)
	}
	s := h.snap()
	if s.History > s.Budget || s.History < s.Budget/2 {
		t.Errorf("history holds %d bytes, budget %d", s.History, s.Budget)
	}
	if s.Panes[0].Timeline[1].Frames[2] != nil {
		t.Error("nothing was evicted")
	}
	if right := h.statusRight(); !strings.Contains(right, "memory ") || !strings.Contains(right, " of 3.0 MB") {
		t.Errorf("the status line does not show the memory: %q", right)
	}
	h.key(key.NameHome, 0)
	h.key("T", 0)
	h.key(key.NameRightArrow, 0)
	h.key(key.NameRightArrow, 0)
	if f := h.snap().Panes[0].Frame; f == nil || f.Update != 2 || !slices.Equal(f.State.Data, want.State.Data) {
		t.Error("an evicted frame did not come back as it was")
	}
	h.typeInto("e.g. 512M", "lots")
	if m := h.message(); !strings.Contains(m, "memory budget") {
		t.Errorf("a bad budget says %q", m)
	}
}
