package master

import (
	"context"
)

// poolScalerOps connects the cluster autoscaler to the pool manager
// (pools_manager.go): the pools as it sees them, growPool, retireNode.
// reuseNode takes a retiring node back before a new one is bought.
func (m *Master) poolScalerOps() scalerOps {
	return scalerOps{
		pools: func(ctx context.Context) ([]scalerPool, error) {
			views, err := m.poolViews(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]scalerPool, 0, len(views))
			for _, v := range views {
				out = append(out, scalerPool{Pool: v.Pool, Types: v.Types, Servers: v.Servers, BreakerOpen: v.BreakerOpen, BreakerReason: v.BreakerReason})
			}
			return out, nil
		},
		grow:   m.growPool,
		retire: m.retireNode,
		reuse:  m.reuseNode,
	}
}
