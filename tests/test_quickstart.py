"""The issue's quickstart, verbatim, followed by a real agent update on the sampled batch."""

from __future__ import annotations

import torch


def test_quickstart_runs_and_trains_an_agent():
    from hippogym import Consolidator, DualEncoder, Episode, HippocampalReplayBuffer, MemoryStore

    torch.manual_seed(0)  # the quickstart draws random data: seeded, so its checks cannot flake
    state_dim, action_dim = 4, 1
    input_dim = state_dim + action_dim + 1  # +1 for reward
    encoder = DualEncoder(input_dim=input_dim, embed_dim=128, momentum=0.995)
    memory = MemoryStore(embed_dim=128, capacity=50_000)
    consolidator = Consolidator(encoder, temperature=0.07, reward_weight=0.5)
    buffer = HippocampalReplayBuffer(memory=memory, encoder=encoder, mixture_ratio=0.3, consolidator=consolidator)
    T = 32
    episode = Episode(
        states=torch.randn(T, state_dim), actions=torch.randn(T, action_dim),
        rewards=torch.randn(T), dones=torch.zeros(T, dtype=torch.bool),
    )
    buffer.add_episode(episode)
    query_state = torch.cat([episode.states[0], torch.zeros(action_dim), episode.rewards[0:1]])
    batch = buffer.sample(batch_size=64, query_state=query_state, top_k=5)
    metrics = buffer.consolidate(steps=50, batch_size=64, report_quality=True)

    assert batch.observations.shape == (64, state_dim)
    assert int((batch.modes == 1).sum()) == round(0.3 * 64)
    assert metrics["steps"] == 50 and metrics["loss_last"] < metrics["loss_first"]
    assert {"effective_rank", "mean_cosine", "staleness_max", "steps_per_s"} <= set(metrics)

    # A real update step of an agent: one TD(0) step of a Q-function on the batch.
    q_net = torch.nn.Sequential(torch.nn.Linear(state_dim + action_dim, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(q_net.parameters(), lr=0.1)

    def td_loss() -> torch.Tensor:
        q = q_net(torch.cat([batch.observations, batch.actions], 1)).squeeze(1)
        with torch.no_grad():
            nxt = q_net(torch.cat([batch.next_observations, batch.actions], 1)).squeeze(1)
            target = batch.rewards + 0.99 * (1 - batch.dones) * nxt
        return ((q - target) ** 2 * batch.weights).mean()

    before = td_loss()
    opt.zero_grad()
    before.backward()
    opt.step()
    assert float(td_loss()) < float(before)
