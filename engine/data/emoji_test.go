package data

import (
	"fmt"
	"image/color"
	"os"
	"strings"
	"testing"
)

func TestParseEmojiList(t *testing.T) {
	if l, err := ParseEmojiList("garden"); err != nil || len(l) != 10 || l[0] != "🦎" {
		t.Errorf("garden: %v %v", l, err)
	}
	if l, err := ParseEmojiList(" 🦎, 🐻‍❄️ ,🇫🇷"); err != nil || len(l) != 3 || l[1] != "🐻‍❄️" {
		t.Errorf("list: %q %v", l, err)
	}
	if _, err := ParseEmojiList(" , "); err == nil {
		t.Error("empty list accepted")
	}
}

func TestLoadEmojiErrors(t *testing.T) {
	white := color.NRGBA{255, 255, 255, 255}
	_, err := LoadEmoji(t.TempDir()+"/none.ttf", []string{"🦎"}, EmojiOptions{Size: 32, Variants: 1, Background: white})
	if err == nil || !strings.Contains(err.Error(), "fonts-noto-color-emoji") || !strings.Contains(err.Error(), "none.ttf") {
		t.Errorf("missing font: %v", err)
	}
	for ci, o := range []EmojiOptions{{Size: 2, Variants: 1}, {Size: 32, Variants: 0}, {Size: 32, Variants: 2, Shift: 9}} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			if _, err := LoadEmoji(EmojiFontPath, []string{"🦎"}, o); err == nil {
				t.Errorf("%+v accepted", o)
			}
		})
	}
}

func TestLoadEmoji(t *testing.T) {
	if _, err := os.Stat(EmojiFontPath); err != nil {
		t.Skip("fonts-noto-color-emoji is not installed")
	}
	white := color.NRGBA{255, 255, 255, 255}
	list := []string{"🦎", "🍎"}
	ds, err := LoadEmoji("", list, EmojiOptions{Size: 32, Variants: 5, Shift: 2, Seed: 1, Background: white})
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 10 || ds.C != 3 || ds.H != 32 || len(ds.Classes) != 2 || ds.Labels[4] != 0 || ds.Labels[5] != 1 {
		t.Fatalf("dataset %d images %dx%dx%d, classes %v, labels %v", ds.N, ds.H, ds.W, ds.C, ds.Classes, ds.Labels)
	}
	// Corners are background (+1), the centre is coloured: the lizard is
	// green (G above R and B), the apple red.
	px := func(n, i, j int) []float32 { return ds.Image(n)[(i*32+j)*3 : (i*32+j)*3+3] }
	for _, n := range []int{0, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			if c := px(n, 0, 0); c[0] != 1 || c[1] != 1 || c[2] != 1 {
				t.Errorf("image %d corner %v, want white", n, c)
			}
		})
	}
	mean := func(n int) (r, g, b float32) {
		for i := 8; i < 24; i++ {
			for j := 8; j < 24; j++ {
				c := px(n, i, j)
				r, g, b = r+c[0], g+c[1], b+c[2]
			}
		}
		return r / 256, g / 256, b / 256
	}
	if r, g, b := mean(0); g < r+0.2 || g < b+0.2 {
		t.Errorf("lizard centre mean %.2f %.2f %.2f: not green", r, g, b)
	}
	if r, g, b := mean(5); r < g+0.3 || r < b+0.3 {
		t.Errorf("apple centre mean %.2f %.2f %.2f: not red", r, g, b)
	}
	// Variants are shifted copies: each equals the first moved by at most 2.
	for n := 1; n < 5; n++ {
		found := false
		for dy := -2; dy <= 2 && !found; dy++ {
			for dx := -2; dx <= 2 && !found; dx++ {
				same := true
				for i := 2; i < 30 && same; i++ {
					for j := 2; j < 30 && same; j++ {
						a, b := px(n, i, j), px(0, i-dy, j-dx)
						same = a[0] == b[0] && a[1] == b[1] && a[2] == b[2]
					}
				}
				found = same
			}
		}
		if !found {
			t.Errorf("variant %d is not a shift of the first image", n)
		}
	}
	for _, v := range ds.Pixels {
		if v < -1 || v > 1 {
			t.Fatalf("pixel %v outside [-1, 1]", v)
		}
	}
}

// Every named set names each of its emoji once.
func TestEmojiSetsNamed(t *testing.T) {
	for name, set := range EmojiSets {
		if len(set.Emoji) == 0 || len(set.Names) != len(set.Emoji) {
			t.Errorf("set %q: %d emoji, %d names", name, len(set.Emoji), len(set.Names))
		}
		seen := map[string]bool{}
		for _, e := range set.Emoji {
			if seen[e] {
				t.Errorf("set %q lists %s twice", name, e)
			}
			seen[e] = true
		}
	}
	if got, err := ParseEmojiList(" Garden "); err != nil || len(got) != len(EmojiSets["garden"].Emoji) {
		t.Fatalf("ParseEmojiList(garden) = %v, %v", got, err)
	}
}
