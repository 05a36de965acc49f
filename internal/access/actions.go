package access

// Action is one thing a user can do through the master's API.
type Action string

// Scope says where an action's role must hold.
type Scope int

// The scopes.
const (
	// Anyone: every caller the master knows, with or without a role.
	Anyone Scope = iota
	// InTenant: the role must hold in the request's tenant (or in "*").
	InTenant
	// Cluster: the caller must be a cluster admin (admin on "*").
	Cluster
	// LocalOnly: root on the master's own socket, nobody else.
	LocalOnly
)

// Rule is who may do an action.
type Rule struct {
	Action Action
	Scope  Scope
	// Min is the weakest role that may (InTenant only; Cluster needs
	// admin on "*").
	Min Role
	// Commands are the CLI commands that ask for it, for the docs.
	Commands string
}

// The actions.
const (
	Ping          Action = "ping"
	WhoAmI        Action = "whoami"
	AppList       Action = "app.ls"
	AppPS         Action = "app.ps"
	AppHistory    Action = "app.history"
	AppProgress   Action = "app.progress"
	AppLogs       Action = "app.logs"
	AppDeploy     Action = "app.deploy"
	AppScale      Action = "app.scale"
	AppRollback   Action = "app.rollback"
	AppPromote    Action = "app.promote"
	AppRemove     Action = "app.rm"
	AppDial       Action = "app.dial"
	SecretList    Action = "secret.ls"
	SecretSet     Action = "secret.set"
	SecretRemove  Action = "secret.rm"
	SecretRotate  Action = "secret.rotate"
	UserList      Action = "user.ls"
	UserAdd       Action = "user.add"
	UserRemove    Action = "user.rm"
	UserRole      Action = "user.role"
	UserTrustCA   Action = "user.trust-ca"
	AuditRead     Action = "audit.read"
	TenantList    Action = "tenant.ls"
	TenantAdd     Action = "tenant.add"
	TenantRemove  Action = "tenant.rm"
	QuotaRead     Action = "quota.read"
	QuotaSet      Action = "quota.set"
	AlertList     Action = "alert.ls"
	AlertWebhook  Action = "alert.webhook"
	PoolList      Action = "pool.ls"
	PoolAdd       Action = "pool.add"
	PoolSet       Action = "pool.set"
	PoolRemove    Action = "pool.rm"
	PoolScale     Action = "pool.scale"
	CostRead      Action = "cost.read"
	AutoscaleRead Action = "autoscaler.read"
	NodeList      Action = "node.ls"
	NodeAdd       Action = "node.add"
	NodeRemove    Action = "node.rm"
	NodeCordon    Action = "node.cordon"
	NodeDrain     Action = "node.drain"
	NodeAudit     Action = "node.audit"
	NodeDial      Action = "node.dial"
	MasterKey     Action = "master.key"
	ImageList     Action = "image.ls"
	ImageInspect  Action = "image.inspect"
	ImageImport   Action = "image.import"
	ImageSign     Action = "image.sign"
	ImageRemove   Action = "image.rm"
	ImageGC       Action = "image.gc"
	DeliveryStats Action = "delivery.stats"
	Prometheus    Action = "metrics.prometheus"
	Debug         Action = "debug"
)

// rules is who may do what: the one table the master enforces, the RBAC
// tests check and README's role table is generated from.
var rules = []Rule{
	{Ping, Anyone, "", "(every command: is the master there)"},
	{WhoAmI, Anyone, "", "moat whoami"},

	{AppList, InTenant, Viewer, "moat apps, moat events, moat top, moat metrics app or route, moat ui"},
	{AppPS, InTenant, Viewer, "moat ps, moat metrics replica"},
	{AppHistory, InTenant, Viewer, "moat history"},
	{AppProgress, InTenant, Viewer, "moat deploy (its progress)"},
	{AppLogs, InTenant, Viewer, "moat logs"},
	{AlertList, InTenant, Viewer, "moat alerts (the tenant's apps'; nodes' for those who may list nodes)"},
	{QuotaRead, InTenant, Viewer, "moat tenant quota (own tenant's)"},
	{AutoscaleRead, InTenant, Viewer, "moat autoscaler status (the tenant's apps; pools, nodes and actions for those who may list nodes)"},
	{CostRead, InTenant, Viewer, "moat cost (the tenant's pools; every pool's for a viewer of all tenants)"},
	{AppDeploy, InTenant, Deployer, "moat deploy"},
	{AppScale, InTenant, Deployer, "moat scale"},
	{AppRollback, InTenant, Deployer, "moat rollback"},
	{AppPromote, InTenant, Deployer, "moat promote"},
	{SecretList, InTenant, Deployer, "moat secret ls (names, never values)"},
	{SecretSet, InTenant, Deployer, "moat secret set"},
	{SecretRemove, InTenant, Deployer, "moat secret rm"},
	{AppRemove, InTenant, Admin, "moat rm"},
	{AppDial, InTenant, Admin, "moat dial, moat tunnel"},
	{UserList, InTenant, Admin, "moat user ls, moat user cas"},
	{UserAdd, InTenant, Admin, "moat user add, moat user key add"},
	{UserRemove, InTenant, Admin, "moat user rm, moat user key rm"},
	{UserRole, InTenant, Admin, "moat user role"},

	{UserTrustCA, Cluster, "", "moat user trust-ca, moat user untrust-ca"},
	{AuditRead, Cluster, "", "moat audit, moat audit verify"},
	{TenantList, Cluster, "", "moat tenant ls"},
	{TenantAdd, Cluster, "", "moat tenant add"},
	{TenantRemove, Cluster, "", "moat tenant rm"},
	{QuotaSet, Cluster, "", "moat tenant quota --set"},
	{AlertWebhook, Cluster, "", "moat alerts webhook add, ls, rm"},
	{SecretRotate, Cluster, "", "moat secret rotate"},
	// Pools create machines, which costs money: a cluster admin's.
	{PoolList, Cluster, "", "moat pool ls"},
	{PoolAdd, Cluster, "", "moat pool add"},
	{PoolSet, Cluster, "", "moat pool set, moat pool image (records the image)"},
	{PoolRemove, Cluster, "", "moat pool rm"},
	{PoolScale, Cluster, "", "moat pool scale"},
	{NodeList, Cluster, "", "moat node ls, moat metrics node (and nodes in top, events, alerts)"},
	{NodeAdd, Cluster, "", "moat node add"},
	{NodeRemove, Cluster, "", "moat node rm"},
	{NodeCordon, Cluster, "", "moat node cordon, moat node uncordon"},
	{NodeDrain, Cluster, "", "moat node drain"},
	{NodeAudit, Cluster, "", "moat node audit"},
	{NodeDial, Cluster, "", "moat node dial"},
	{MasterKey, Cluster, "", "moat node add (the master's public key)"},
	{ImageList, Cluster, "", "moat image ls"},
	{ImageInspect, Cluster, "", "moat image inspect"},
	{ImageImport, Cluster, "", "moat image import, moat image build (without -o)"},
	{ImageSign, Cluster, "", "moat image sign"},
	{ImageRemove, Cluster, "", "moat image rm"},
	{ImageGC, Cluster, "", "moat image gc"},
	{DeliveryStats, Cluster, "", "(image delivery counters)"},
	// Every tenant's apps and every node, in one scrape: not filtered by
	// tenant, so a cluster admin's only.
	{Prometheus, Cluster, "", "(GET /v1/prometheus: every node, app and replica for Prometheus)"},

	{Debug, LocalOnly, "", "/debug/pprof, /debug/progress"},
}

// Rules are who may do what, in the order the docs list them.
func Rules() []Rule { return append([]Rule(nil), rules...) }

// RuleFor returns the rule of a; false for an action there is none for.
func RuleFor(a Action) (Rule, bool) {
	for _, r := range rules {
		if r.Action == a {
			return r, true
		}
	}
	return Rule{}, false
}
