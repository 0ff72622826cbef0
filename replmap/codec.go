package replmap

import "encoding/json"

// Codec turns values into the bytes stored in Redis and back.
type Codec[V any] interface {
	Encode(V) ([]byte, error)
	Decode([]byte) (V, error)
}

// stringDecoder is implemented by codecs that can decode a string without copying it first.
type stringDecoder[V any] interface {
	DecodeString(string) (V, error)
}

// decodeString decodes s with c, without a copy when c allows it.
func decodeString[V any](c Codec[V], s string) (V, error) {
	if sd, ok := c.(stringDecoder[V]); ok {
		return sd.DecodeString(s)
	}
	return c.Decode([]byte(s))
}

// JSON is the default codec: encoding/json.
type JSON[V any] struct{}

// Encode implements Codec.
func (JSON[V]) Encode(v V) ([]byte, error) { return json.Marshal(v) }

// Decode implements Codec.
func (JSON[V]) Decode(b []byte) (V, error) {
	var v V
	err := json.Unmarshal(b, &v)
	return v, err
}

// Bytes stores values as they are. Get returns the replica's own slice: do not modify it.
type Bytes struct{}

// Encode implements Codec.
func (Bytes) Encode(v []byte) ([]byte, error) { return v, nil }

// Decode implements Codec.
func (Bytes) Decode(b []byte) ([]byte, error) { return b, nil }

// String stores strings as their bytes.
type String struct{}

// Encode implements Codec.
func (String) Encode(v string) ([]byte, error) { return []byte(v), nil }

// Decode implements Codec.
func (String) Decode(b []byte) (string, error) { return string(b), nil }

// DecodeString returns s itself.
func (String) DecodeString(s string) (string, error) { return s, nil }
