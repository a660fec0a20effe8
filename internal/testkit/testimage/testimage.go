// Package testimage makes small, real image files for tests: bytes that
// decoders and content sniffing accept as what they claim to be.
package testimage

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
)

// solid is a w×h image of one colour, seeded so different seeds give
// different bytes.
func solid(w, h int, seed byte) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	c := color.RGBA{R: seed, G: 255 - seed, B: seed / 2, A: 255}
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	return img
}

// PNG returns a w×h PNG.
func PNG(w, h int, seed byte) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, solid(w, h, seed)); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// JPEG returns a w×h JPEG.
func JPEG(w, h int, seed byte) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, solid(w, h, seed), nil); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// GIF returns a w×h GIF.
func GIF(w, h int, seed byte) []byte {
	var b bytes.Buffer
	if err := gif.Encode(&b, solid(w, h, seed), nil); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// WebP returns a minimal lossless WebP container (RIFF, WEBP, a VP8L chunk
// holding a 1×1 image), enough for content sniffing; the standard library
// has no WebP encoder.
func WebP(seed byte) []byte {
	// VP8L: signature 0x2f, 14-bit width-1 and height-1 (0, 0), alpha, version.
	chunk := []byte{0x2f, 0x00, 0x00, 0x00, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, seed}
	var b bytes.Buffer
	b.WriteString("RIFF")
	_ = binary.Write(&b, binary.LittleEndian, uint32(4+8+len(chunk)))
	b.WriteString("WEBPVP8L")
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(chunk)))
	b.Write(chunk)
	return b.Bytes()
}

// Sized returns a PNG of at least n bytes: an image whose pixels do not
// compress (noise from a fixed generator), so a size limit can be tested
// with a file that is really an image.
func Sized(n int) []byte {
	side := int(math.Sqrt(float64(n)/4)) + 2 // noise costs about 4 bytes a pixel
	for {
		img := image.NewRGBA(image.Rect(0, 0, side, side))
		x := uint32(2463534242)
		for i := range img.Pix {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			img.Pix[i] = byte(x)
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			panic(err)
		}
		if b.Len() >= n {
			return b.Bytes()
		}
		side += side/10 + 1
	}
}
