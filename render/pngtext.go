package render

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"sort"
)

// WritePNGText writes img to path as PNG, whole or not at all, with each
// entry of text as a tEXt chunk (keyword, value) after the header, so the
// file says what made it. Keywords must be 1 to 79 Latin-1 characters;
// values are written as UTF-8 bytes.
func WritePNGText(path string, img image.Image, text map[string]string) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	out, err := insertText(buf.Bytes(), text)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return writeFile(path, func(w io.Writer) error { _, err := w.Write(out); return err })
}

// insertText puts tEXt chunks after the IHDR chunk of PNG data, in key order.
func insertText(data []byte, text map[string]string) ([]byte, error) {
	const sigLen, ihdrLen = 8, 8 + 13 + 4
	if len(data) < sigLen+ihdrLen || string(data[sigLen+4:sigLen+8]) != "IHDR" {
		return nil, errors.New("png: no IHDR chunk")
	}
	keys := make([]string, 0, len(text))
	for k := range text {
		if len(k) < 1 || len(k) > 79 {
			return nil, fmt.Errorf("png: text keyword %q must have 1 to 79 characters", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out bytes.Buffer
	out.Write(data[:sigLen+ihdrLen])
	for _, k := range keys {
		body := append([]byte(k), 0)
		body = append(body, text[k]...)
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(body)))
		out.Write(n[:])
		chunk := append([]byte("tEXt"), body...)
		out.Write(chunk)
		binary.BigEndian.PutUint32(n[:], crc32.ChecksumIEEE(chunk))
		out.Write(n[:])
	}
	out.Write(data[sigLen+ihdrLen:])
	return out.Bytes(), nil
}

// PNGText reads the tEXt chunks of PNG data (for tests and tools).
func PNGText(data []byte) (map[string]string, error) {
	if len(data) < 8 || string(data[1:4]) != "PNG" {
		return nil, errors.New("png: not a PNG file")
	}
	out := map[string]string{}
	for p := 8; p+12 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[p:]))
		if n < 0 || p+12+n > len(data) {
			return nil, errors.New("png: truncated chunk")
		}
		typ := string(data[p+4 : p+8])
		if typ == "tEXt" {
			body := data[p+8 : p+8+n]
			if i := bytes.IndexByte(body, 0); i > 0 {
				out[string(body[:i])] = string(body[i+1:])
			}
		}
		if typ == "IEND" {
			break
		}
		p += 12 + n
	}
	return out, nil
}
