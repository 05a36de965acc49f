package master

import (
	"context"

	"github.com/moatcloud/moat/internal/master/store"
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
				var servers []store.PoolServer
				for _, sv := range v.Servers {
					if lostCreate(sv, m.poolMgr) {
						continue
					}
					servers = append(servers, sv)
				}
				out = append(out, scalerPool{Pool: v.Pool, Types: v.Types, Servers: servers, BreakerOpen: v.BreakerOpen, BreakerReason: v.BreakerReason})
			}
			return out, nil
		},
		grow:   m.growPool,
		retire: m.retireNode,
		reuse:  m.reuseNode,
	}
}

// lostCreate says whether a server row is a create call whose answer was
// lost (no provider id, and no create under way): as for the pool
// manager (planPool), it is not on its way — the orphan pass adopts or
// forgets it — and counting it would keep idle nodes and hold back a
// scale-up for a server that will not come.
func lostCreate(s store.PoolServer, pm *poolManager) bool {
	switch s.State {
	case store.ServerCreating, store.ServerBooting, store.ServerEnrolling:
		return s.ProviderID == "" && (pm == nil || !pm.isBusy(s.Name))
	}
	return false
}
