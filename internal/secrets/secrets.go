// Package secrets encrypts secrets at rest (bot tokens, WhatsApp tokens, BYO
// LLM keys) with AES-256-GCM.
//
// Every ciphertext starts with a version byte and the ID of the key that sealed
// it, so keys can rotate: a Box seals with its current key and opens anything
// sealed by the current key or one of the old keys it was given. The caller
// passes associated data (for example "tenant:<id>/slack-bot-token") that is
// authenticated but not stored, so a ciphertext copied to another tenant's row
// fails to open instead of decrypting.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	version   = 1
	keyIDLen  = 4
	headerLen = 1 + keyIDLen
	keyLen    = 32
)

// ErrUnknownKey means the ciphertext was sealed by a key this Box does not hold.
var ErrUnknownKey = errors.New("secrets: ciphertext sealed with an unknown key")

// ErrCorrupt means the ciphertext was tampered with, truncated or sealed for
// other associated data. It never yields plaintext.
var ErrCorrupt = errors.New("secrets: ciphertext is corrupt or was tampered with")

// Box seals and opens secrets.
type Box struct {
	current uint32
	aeads   map[uint32]cipher.AEAD
}

// KeyID derives the stable identifier stored with each ciphertext. It is a
// hash prefix, so the key itself never needs a configured name.
func KeyID(key []byte) uint32 {
	sum := sha256.Sum256(append([]byte("konstruct-key-id:"), key...))
	return binary.BigEndian.Uint32(sum[:keyIDLen])
}

// New returns a Box sealing with current and also opening with old keys.
func New(current []byte, old ...[]byte) (*Box, error) {
	b := &Box{aeads: make(map[uint32]cipher.AEAD, 1+len(old))}
	for i, k := range append([][]byte{current}, old...) {
		if len(k) != keyLen {
			return nil, fmt.Errorf("secrets: key %d is %d bytes, want %d", i, len(k), keyLen)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d: %w", i, err)
		}
		id := KeyID(k)
		if i == 0 {
			b.current = id
		}
		if _, dup := b.aeads[id]; !dup {
			b.aeads[id] = aead
		}
	}
	return b, nil
}

// Seal encrypts plaintext bound to aad.
func (b *Box) Seal(plaintext, aad []byte) ([]byte, error) {
	aead := b.aeads[b.current]
	out := make([]byte, headerLen+aead.NonceSize(), headerLen+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = version
	binary.BigEndian.PutUint32(out[1:headerLen], b.current)
	nonce := out[headerLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secrets: seal: read nonce: %w", err)
	}
	return aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a ciphertext produced by Seal with the same aad.
func (b *Box) Open(ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < headerLen || ciphertext[0] != version {
		return nil, ErrCorrupt
	}
	aead, ok := b.aeads[binary.BigEndian.Uint32(ciphertext[1:headerLen])]
	if !ok {
		return nil, ErrUnknownKey
	}
	rest := ciphertext[headerLen:]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrCorrupt
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], aad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return plain, nil
}

// NeedsRotation reports whether ciphertext was sealed by an old key and should
// be re-sealed with the current one.
func (b *Box) NeedsRotation(ciphertext []byte) bool {
	return len(ciphertext) >= headerLen && binary.BigEndian.Uint32(ciphertext[1:headerLen]) != b.current
}
