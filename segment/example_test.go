package segment_test

import (
	"fmt"

	"github.com/batpak-go/batpak/segment"
)

// A record is encoded as msgpack, wrapped in a CRC-protected frame, and read
// back by checking the frame and decoding its payload.
func Example() {
	rec := segment.Record{
		Seq:       1,
		Kind:      0x1001,
		Version:   1,
		Timestamp: 1_700_000_000_000_000,
		Entity:    "account:42",
		Scope:     "bank:eu",
		Metadata:  map[string]string{"user": "alice"},
		Payload:   []byte{0x81, 0xa6, 'a', 'm', 'o', 'u', 'n', 't', 0x64}, // msgpack {"amount": 100}
	}
	frame, err := segment.AppendFrame(nil, segment.AppendRecord(nil, &rec))
	if err != nil {
		fmt.Println(err)
		return
	}

	payload, size, status := segment.DecodeFrame(frame)
	fmt.Println(status == segment.FrameOK, size == len(frame))

	var got segment.Record
	if err := segment.DecodeRecord(payload, &got); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Seq, got.Version, got.Entity, got.Scope, got.Metadata["user"])
	fmt.Printf("kind %#04x, payload % x\n", got.Kind, got.Payload)

	// A damaged frame is never decoded.
	frame[len(frame)-1] ^= 0xff
	_, _, status = segment.DecodeFrame(frame)
	fmt.Println(status == segment.FrameBad)
	// Output:
	// true true
	// 1 1 account:42 bank:eu alice
	// kind 0x1001, payload 81 a6 61 6d 6f 75 6e 74 64
	// true
}
