package segment_test

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// scanReader is scanAll through ScanReader, reading data with a buffer of
// bufSize bytes; it also reports whether the whole data was asked for.
func scanReader(data []byte, size int64, bufSize int, id uint32, path string, from int64) (scanned, segment.ScanResult, error, bool) {
	var s scanned
	asked := false
	whole := func() ([]byte, error) { asked = true; return data, nil }
	res, err := segment.ScanReader(bytes.NewReader(data), size, make([]byte, bufSize), whole, id, path, segment.ScanOptions{From: from}, func(off int64, size int, rec *segment.Record) error {
		s.Offsets = append(s.Offsets, off)
		s.Sizes = append(s.Sizes, size)
		c := *rec
		c.Payload = append([]byte(nil), rec.Payload...)
		s.Records = append(s.Records, c)
		return nil
	})
	return s, res, err, asked
}

// sameScan fails t unless ScanReader over data[:size] delivers what ScanWith
// does, for every buffer size: the same frames, result and error.
func sameScan(t *testing.T, name string, data []byte, size int64, id uint32, path string, from int64) {
	t.Helper()
	want, wantRes, wantErr := scanAll(data[:size], id, path, from)
	for _, bufSize := range []int{16, 64, 300, 1000, 4096, 1 << 20} {
		got, res, err, _ := scanReader(data, size, bufSize, id, path, from)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(res, wantRes) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s, buffer %d: ScanReader gave %d frames, %+v, %v; ScanWith %d frames, %+v, %v",
				name, bufSize, len(got.Offsets), res, err, len(want.Offsets), wantRes, wantErr)
		}
	}
}

// TestScanReaderMatchesScanWith checks ScanReader against ScanWith on clean
// segments (sealed, unsealed, preallocated, cut short, started mid-file)
// and on every single-byte corruption of a small sealed one.
func TestScanReaderMatchesScanWith(t *testing.T) {
	dir := t.TempDir()
	sealed := buildSegment(t, vfs.OSFS{}, dir, 1, 1, 12, 0, true)
	open := buildSegment(t, vfs.OSFS{}, dir, 2, 13, 12, 0, false)
	prealloc := buildSegment(t, vfs.OSFS{}, dir, 3, 25, 12, 64<<10, false)
	for _, s := range []*builtSegment{sealed, open, prealloc} {
		data := readFile(t, s.Path)
		n := int64(len(data))
		sameScan(t, "whole", data, n, s.ID, s.Path, 0)
		sameScan(t, "from the fifth frame", data, n, s.ID, s.Path, int64(s.Positions[4].Offset))
		end := int64(s.Positions[7].Offset + s.Positions[7].Length)
		sameScan(t, "cut after the eighth frame", data, end, s.ID, s.Path, 0)
		sameScan(t, "cut inside the eighth frame", data, end-3, s.ID, s.Path, 0)
		sameScan(t, "past the end", data, n, s.ID, s.Path, n+1)
		sameScan(t, "header only", data, segment.HeaderSize, s.ID, s.Path, 0)
		sameScan(t, "short header", data, segment.HeaderSize-1, s.ID, s.Path, 0)
		sameScan(t, "wrong id", data, n, s.ID+10, s.Path, 0)
	}
	data := readFile(t, sealed.Path)
	for i := range data {
		d := bytes.Clone(data)
		d[i] ^= 0x5a
		sameScan(t, fmt.Sprintf("byte %d flipped", i), d, int64(len(d)), sealed.ID, sealed.Path, 0)
	}
}

// TestScanReaderReadsWithoutMapping checks that a clean scan never asks
// for the whole file, with frames that straddle the buffer's end.
func TestScanReaderReadsWithoutMapping(t *testing.T) {
	for _, seal := range []bool{true, false} {
		s := buildSegment(t, vfs.OSFS{}, t.TempDir(), 1, 1, 40, 0, seal)
		data := readFile(t, s.Path)
		size := int64(len(data))
		if !seal {
			size = s.FrameEnd
		}
		got, _, err, asked := scanReader(data, size, 1000, s.ID, s.Path, 0)
		if err != nil || asked || len(got.Records) != 40 {
			t.Fatalf("sealed %t: %d records, error %v, whole file asked for: %t", seal, len(got.Records), err, asked)
		}
		// A frame larger than the buffer is read from the whole file.
		got, _, err, asked = scanReader(data, size, 64, s.ID, s.Path, 0)
		if err != nil || !asked || len(got.Records) != 40 {
			t.Fatalf("sealed %t, small buffer: %d records, error %v, whole file asked for: %t", seal, len(got.Records), err, asked)
		}
	}
}

// FuzzScanReader checks ScanReader against ScanWith on any bytes after a
// valid header, from any offset, with a small and a large buffer: the same
// frames, result and error.
func FuzzScanReader(f *testing.F) {
	addSeeds(f, scanSeeds(f))
	hdr := segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, Segment: 1, Created: 1})
	f.Fuzz(func(t *testing.T, in []byte, withHeader bool, from uint16) {
		data := in
		if withHeader {
			data = append(append([]byte(nil), hdr...), in...)
		}
		want, wantRes, wantErr := scanAll(data, 1, "fuzz", int64(from))
		for _, bufSize := range []int{64, 4096} {
			got, res, err, _ := scanReader(data, int64(len(data)), bufSize, 1, "fuzz", int64(from))
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(res, wantRes) || !reflect.DeepEqual(got, want) {
				t.Fatalf("buffer %d: ScanReader gave %d frames, %+v, %v; ScanWith %d frames, %+v, %v",
					bufSize, len(got.Offsets), res, err, len(want.Offsets), wantRes, wantErr)
			}
		}
	})
}
