package secrets

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestSealOpenRoundTrip(t *testing.T) {
	box, err := New(key(1))
	require.NoError(t, err)
	ct, err := box.Seal([]byte("xoxb-secret"), []byte("tenant:a"))
	require.NoError(t, err)
	require.NotContains(t, string(ct), "xoxb-secret")

	pt, err := box.Open(ct, []byte("tenant:a"))
	require.NoError(t, err)
	require.Equal(t, "xoxb-secret", string(pt))

	again, err := box.Seal([]byte("xoxb-secret"), []byte("tenant:a"))
	require.NoError(t, err)
	require.NotEqual(t, ct, again, "a fresh nonce per seal")
}

func TestTamperedCiphertextIsAnError(t *testing.T) {
	box, err := New(key(1))
	require.NoError(t, err)
	ct, err := box.Seal([]byte("token"), nil)
	require.NoError(t, err)
	for i := range ct {
		if i >= 1 && i < headerLen {
			continue // key ID bytes give ErrUnknownKey, checked below
		}
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		pt, err := box.Open(bad, nil)
		require.ErrorIs(t, err, ErrCorrupt, "byte %d", i)
		require.Nil(t, pt)
	}
	bad := bytes.Clone(ct)
	bad[2] ^= 0xff
	_, err = box.Open(bad, nil)
	require.ErrorIs(t, err, ErrUnknownKey)

	for _, short := range [][]byte{nil, {version}, ct[:headerLen+5]} {
		_, err = box.Open(short, nil)
		require.ErrorIs(t, err, ErrCorrupt)
	}
}

// A ciphertext moved to another tenant's row must not open there.
func TestAssociatedDataBindsCiphertext(t *testing.T) {
	box, err := New(key(1))
	require.NoError(t, err)
	ct, err := box.Seal([]byte("token"), []byte("tenant:a"))
	require.NoError(t, err)
	_, err = box.Open(ct, []byte("tenant:b"))
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestKeyRotation(t *testing.T) {
	oldBox, err := New(key(1))
	require.NoError(t, err)
	ct, err := oldBox.Seal([]byte("token"), nil)
	require.NoError(t, err)

	rotated, err := New(key(2), key(1))
	require.NoError(t, err)
	require.True(t, rotated.NeedsRotation(ct))
	pt, err := rotated.Open(ct, nil)
	require.NoError(t, err)
	require.Equal(t, "token", string(pt))

	fresh, err := rotated.Seal(pt, nil)
	require.NoError(t, err)
	require.False(t, rotated.NeedsRotation(fresh))

	_, err = oldBox.Open(fresh, nil)
	require.ErrorIs(t, err, ErrUnknownKey)
}

func TestNewRejectsBadKeys(t *testing.T) {
	_, err := New([]byte("short"))
	require.ErrorContains(t, err, "key 0 is 5 bytes, want 32")
	_, err = New(key(1), []byte("x"))
	require.ErrorContains(t, err, "key 1 is 1 bytes")
}

func FuzzOpen(f *testing.F) {
	box, err := New(key(7))
	require.NoError(f, err)
	ct, err := box.Seal([]byte("seed"), nil)
	require.NoError(f, err)
	f.Add(ct)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		pt, err := box.Open(data, nil)
		if err == nil {
			// Only a genuine ciphertext opens.
			require.Equal(t, "seed", string(pt))
		}
	})
}
