"""Scale-out: the same run on a Ray cluster (the vote's GPU k-NN search is `augpe.embed.knn_device`).

Nothing here changes what a run computes, only where: generator replicas answer seeded requests
(so which replica served a request does not matter), vote shards return exact partial tallies
that the driver sums (so the sum equals the local vote bit for bit), and the GPU search returns
the same neighbours as the CPU one. Noise is added once, by the privacy code, on the driver.

    augpe.scale.cluster    connecting to / starting Ray (`execution.address`)
    augpe.scale.ray_llm    RayLLM: the configured backend in N Ray actors, behind the LLM Protocol
    augpe.scale.ray_vote   ShardedVote: private embeddings held in shards, partial tallies summed
    augpe.scale.ray_data_llm  vLLM through Ray Data LLM (untested here: no GPU, no vllm)

Ray is imported lazily (`pip install 'augpe[ray]'`).
"""
