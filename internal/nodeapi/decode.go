package nodeapi

import (
	"io"

	"github.com/moatcloud/moat/internal/wire"
)

// MaxRequestBytes bounds every JSON request body the daemon decodes.
const MaxRequestBytes = wire.MaxRequestBytes

// Decode reads one JSON object strictly (see wire.Decode).
func Decode(r io.Reader, v any) error { return wire.Decode(r, v) }

// DecodeContainerSpec decodes and validates a container request.
func DecodeContainerSpec(r io.Reader) (ContainerSpec, error) {
	var s ContainerSpec
	if err := wire.Decode(r, &s); err != nil {
		return ContainerSpec{}, err
	}
	if err := s.Validate(); err != nil {
		return ContainerSpec{}, err
	}
	return s, nil
}
