package master

// poolScalerOps connects the cluster autoscaler to the pool manager
// (pools_manager.go): the pools as it sees them, growPool, retireNode.
// Until the manager runs, the autoscaler leaves the cluster as it is.
func (m *Master) poolScalerOps() scalerOps { return scalerOps{} }
