/**
 * StoreDivergedError: etcd answered from another history than the one this node followed: another cluster answers, or
 * etcd lost a change of the desired state (its revision is below both the one the node has applied and the last change
 * of services, backends or addresses it has seen, or its services and backends at that change are not the ones the
 * node saw: it lost its data, or was restored from an older backup). Applying that state would delete what the node
 * serves without anyone asking for it. (A revision below the applied one alone, etcd having lost only membership
 * records, is no divergence: the store follows etcd again from there, see EtcdStateStore.)
 */
export class StoreDivergedError extends Error {
  override readonly name = "StoreDivergedError";
  /** etcd's revision and cluster id in the answer that showed it. */
  readonly revision: number;
  readonly clusterId: string;
  /** What this node had followed: its applied revision, and the last change of the desired state it had seen. */
  readonly appliedRevision: number;
  readonly desiredRevision: number;
  readonly followedClusterId: string;

  constructor(
    found: { revision: number; clusterId: string },
    followed: { appliedRevision: number; desiredRevision: number; clusterId: string },
  ) {
    const what =
      found.clusterId !== followed.clusterId
        ? `another etcd cluster answers (cluster id ${found.clusterId}, this node followed ${followed.clusterId})`
        : found.revision < followed.desiredRevision
          ? `etcd's revision ${found.revision} is below the revision ${followed.appliedRevision} this node has applied and below revision ` +
            `${followed.desiredRevision} of the last change of services, backends or addresses it has seen (etcd lost its data or was restored from an older backup)`
          : `etcd's services and backends at revision ${followed.desiredRevision} are not the ones this node applied (etcd lost writes, ` +
            `its revision ${found.revision} fell below the revision ${followed.appliedRevision} this node had applied)`;
    super(
      `${what}; this node keeps its desired state and IPVS as they are, refuses changes and no longer follows etcd: ` +
        "restart gorb to take etcd's state as it is",
    );
    this.revision = found.revision;
    this.clusterId = found.clusterId;
    this.appliedRevision = followed.appliedRevision;
    this.desiredRevision = followed.desiredRevision;
    this.followedClusterId = followed.clusterId;
  }
}
