package provider

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryMachines are Machines that boot nothing: a machine is a name
// with an address (10.99.x.y), its image and user data kept for tests to
// read. For tests of the API's behaviour; provider/local's Cloud is the
// one whose machines are real. Both fake cloud APIs stand on either.
type MemoryMachines struct {
	mu       sync.Mutex
	n        int
	machines map[string]MemoryMachine
	snaps    int
	// Fail, if set, is what Boot returns for a name (nil: boots).
	Fail func(name string) error
	// BootDelay is how long a boot takes (a real cloud's create: seconds).
	BootDelay time.Duration
}

// MemoryMachine is one machine MemoryMachines hold.
type MemoryMachine struct {
	IPv4, Image, UserData string
}

// Boot records the machine.
func (m *MemoryMachines) Boot(ctx context.Context, name, image, userData string) (string, error) {
	if m.BootDelay > 0 {
		t := time.NewTimer(m.BootDelay)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		if err := m.Fail(name); err != nil {
			return "", err
		}
	}
	if m.machines == nil {
		m.machines = map[string]MemoryMachine{}
	}
	if _, dup := m.machines[name]; dup {
		return "", fmt.Errorf("machine %s exists", name)
	}
	m.n++
	ip := fmt.Sprintf("10.99.%d.%d", m.n/250, m.n%250+1)
	m.machines[name] = MemoryMachine{IPv4: ip, Image: image, UserData: userData}
	return ip, nil
}

// Destroy forgets the machine.
func (m *MemoryMachines) Destroy(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.machines, name)
	return nil
}

// Snapshot names a new image after the machine.
func (m *MemoryMachines) Snapshot(_ context.Context, name string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.machines[name]; !ok {
		return "", fmt.Errorf("no machine %s", name)
	}
	m.snaps++
	return fmt.Sprintf("snap-%d-%s", m.snaps, name), nil
}

// Machines is a copy of what m holds, by name.
func (m *MemoryMachines) Machines() map[string]MemoryMachine {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]MemoryMachine, len(m.machines))
	for k, v := range m.machines {
		out[k] = v
	}
	return out
}

var _ Machines = (*MemoryMachines)(nil)
