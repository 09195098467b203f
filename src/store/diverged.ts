/**
 * StoreDivergedError: etcd answered from another history than the one this node followed: its revision is below the one the node
 * has applied (etcd lost its data, or was restored from an older backup), or another cluster answers. Applying
 * that state would delete what the node serves without anyone asking for it.
 */
export class StoreDivergedError extends Error {
  override readonly name = "StoreDivergedError";
  /** etcd's revision and cluster id in the answer that showed it. */
  readonly revision: number;
  readonly clusterId: string;
  /** What this node had followed. */
  readonly appliedRevision: number;
  readonly followedClusterId: string;

  constructor(found: { revision: number; clusterId: string }, followed: { appliedRevision: number; clusterId: string }) {
    const what =
      found.clusterId !== followed.clusterId
        ? `another etcd cluster answers (cluster id ${found.clusterId}, this node followed ${followed.clusterId})`
        : `etcd's revision ${found.revision} is below the revision ${followed.appliedRevision} this node has applied (etcd lost its data or was restored from an older backup)`;
    super(
      `${what}; this node keeps its desired state and IPVS as they are, refuses changes and no longer follows etcd: ` +
        "restart gorb to take etcd's state as it is",
    );
    this.revision = found.revision;
    this.clusterId = found.clusterId;
    this.appliedRevision = followed.appliedRevision;
    this.followedClusterId = followed.clusterId;
  }
}
