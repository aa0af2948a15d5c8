"""One rank's part of a layer pipeline: its blocks, and the read-out on the last stage.

Every rank builds the whole `Trainer` from the same seed, so its blocks start with the weights
a single process would give them, and then trains only the blocks of its stage.

NOTE: so every rank also holds the parameters of the other stages' blocks, unused. That costs
nothing at MNIST sizes but wastes memory for networks that need a pipeline to fit at all. A minibatch
crosses the pipeline in up to three passes, each bottom to top, in this order:

1. the neutral-label pass, whose activities feed the read-out on the last stage (every stage
   sends the activities of its read-out layers there directly);
2. for hard negatives chosen by goodness, a pass with every label, whose per-layer goodness is
   sent to the last stage. The last stage samples hard negative labels and sends them back to
   the first stage. Random negatives are drawn on the first stage instead.
3. the training pass: each stage trains its blocks on the positive and negative activities
   from the stage below and sends its normalised outputs up.

Each pass runs with the weights from before this minibatch's updates, and each block trains on
the same inputs as in `Trainer.train_batch`, so the pipeline computes what the single-process
simultaneous (or greedy) schedule computes.

Hard negatives make the pipeline run in lock step: the negative labels of batch t depend on the
read-out's (or every block's) output after batch t-1, so the first stage cannot start training
batch t before the last stage has finished batch t-1. With random negatives nothing flows back
down, and stage s trains batch t while stage s+1 trains batch t-1.
"""

from __future__ import annotations

import math
import time

import torch
from tqdm import tqdm

from ..labels import overlay_every_label, overlay_labels, overlay_neutral
from ..negatives import hard_wrong_labels, random_wrong_labels
from ..training.loop import epoch_order
from ..training.trainer import Trainer
from .comm import Communicator
from .data_parallel import ReplicaSync
from .layout import ParallelLayout

# Message tags; each (sender, receiver, tag) channel delivers in order.
TAG_NEUTRAL, TAG_FEATURES, TAG_ALL_LABELS, TAG_GOODNESS, TAG_NEGATIVES, TAG_TRAIN = range(1, 7)


class Batch:
    """This replica's share of one global minibatch.

    Args:
        images: `(n, features)` all training images.
        labels: `(n,)` their labels.
        index: `(global_batch,)` indices of the global minibatch.
        replica: this replica's index.
        replicas: number of replicas that share the batch.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, replica: int, replicas: int):
        shares = torch.tensor_split(index, replicas)
        self.global_labels = labels[index]
        self.start = sum(len(share) for share in shares[:replica])
        local = shares[replica]
        self.size = len(local)
        self.images = images[local]
        self.labels = labels[local]
        self.share = self.size / len(index)  # this replica's weight in the global batch mean
        self.share_sizes = [len(share) for share in shares]

    def local_part(self, values: torch.Tensor) -> torch.Tensor:
        """This replica's rows of a `(global_batch, ...)` tensor."""
        return values[self.start : self.start + self.size]


class PipelineStage:
    """The blocks of one stage, their communication with the other stages, and their replicas.

    Args:
        trainer: the full single-process trainer, built from the run's seed on every rank.
        layout: the job's stages and replicas.
        comm: the job's communicator.

    Every rank must construct its stage in the same order, because the replica groups are
    created collectively here.
    """

    def __init__(self, trainer: Trainer, layout: ParallelLayout, comm: Communicator) -> None:
        self.trainer = trainer
        self.config = trainer.config
        self.network = trainer.network
        self.layout = layout
        self.comm = comm
        rank = comm.rank
        self.stage = layout.stage_of(rank)
        self.replica = layout.replica_of(rank)
        self.first_block, self.end_block = layout.bounds[self.stage]
        self.blocks = list(self.network.blocks)[self.first_block : self.end_block]
        self.is_first = self.stage == 0
        self.is_last = self.stage == layout.stages - 1
        self.readout = trainer.readout if self.is_last else None
        self.num_classes = trainer.data.num_classes
        self.skip_first = self.config.train.skip_first

        widths = self.network.widths
        self.in_width = trainer.data.train_images.shape[1] if self.is_first else widths[self.first_block - 1]
        self.out_width = widths[self.end_block - 1]

        # Groups are collective calls: every rank creates every stage's group, in stage order.
        groups = [comm.new_group(layout.stage_ranks(s)) if layout.replicas > 1 else None for s in range(layout.stages)]
        self.replica_group = groups[self.stage]
        self.sync: ReplicaSync | None = None
        if layout.replicas > 1:
            modules = [*self.blocks, *([self.readout] if self.readout is not None else [])]
            self.sync = ReplicaSync(modules, comm, self.replica_group)
            self.sync.replicate_peer_normalization(self.blocks)

    # -- neighbours -------------------------------------------------------------------------

    def _rank(self, stage: int) -> int:
        return self.layout.rank_of(stage, self.replica)

    def _readout_layers(self, stage: int) -> range:
        first, end = self.layout.bounds[stage]
        return range(max(first, self.skip_first), end)

    # -- passes -----------------------------------------------------------------------------

    @torch.no_grad()
    def neutral_pass(self, images: torch.Tensor) -> list[torch.Tensor | None] | None:
        """Run the neutral-label pass through this stage; the last stage returns all activities.

        Args:
            images: `(batch, features)`; only the first stage reads them, the others use the
                batch size.

        Returns:
            On the last stage, one entry per block: `(batch, units)` activities before
            normalisation for the read-out's layers, None for the skipped bottom layers.
            None on the other stages.
        """
        batch = images.shape[0]
        if self.is_first:
            x = overlay_neutral(images, self.num_classes, self.network.label_strength)
            h = self.network.normalize(x) if self.network.normalize_input else x
        else:
            h = self.comm.recv((batch, self.in_width), self._rank(self.stage - 1), TAG_NEUTRAL)
        own = []
        for block in self.blocks:
            a = block(h)
            own.append(a)
            h = self.network.normalize(a)
        used = [own[i - self.first_block] for i in self._readout_layers(self.stage)]
        if not self.is_last:
            self.comm.send(h, self._rank(self.stage + 1), TAG_NEUTRAL)
            if used:
                # The raw activities go to the read-out, which normalises them itself.
                self.comm.send(torch.cat(used, dim=1), self._rank(self.layout.stages - 1), TAG_FEATURES)
            return None

        activities: list[torch.Tensor | None] = [None] * len(self.network.blocks)
        for stage in range(self.layout.stages - 1):
            layers = self._readout_layers(stage)
            if not layers:
                continue
            widths = [self.network.widths[i] for i in layers]
            features = self.comm.recv((batch, sum(widths)), self._rank(stage), TAG_FEATURES)
            for i, a in zip(layers, torch.split(features, widths, dim=1)):
                activities[i] = a
        for i in self._readout_layers(self.stage):
            activities[i] = own[i - self.first_block]
        return activities

    @torch.no_grad()
    def goodness_pass(self, images: torch.Tensor) -> torch.Tensor | None:
        """Compute every block's goodness for every label, as `FFNetwork.goodness_per_label`.

        Returns:
            `(batch, num_blocks, num_classes)` goodness on the last stage, None elsewhere.
        """
        batch, classes = images.shape[0], self.num_classes
        if self.is_first:
            x = overlay_every_label(images, classes, self.network.label_strength)  # (classes * batch, features)
            h = self.network.normalize(x) if self.network.normalize_input else x
        else:
            h = self.comm.recv((classes * batch, self.in_width), self._rank(self.stage - 1), TAG_ALL_LABELS)
        own = []
        for block in self.blocks:
            a = block(h)
            own.append(block.goodness(a).view(classes, batch))
            h = self.network.normalize(a)
        goodness = torch.stack(own)  # (stage blocks, classes, batch)
        if not self.is_last:
            self.comm.send(h, self._rank(self.stage + 1), TAG_ALL_LABELS)
            self.comm.send(goodness, self._rank(self.layout.stages - 1), TAG_GOODNESS)
            return None
        parts = []
        for stage in range(self.layout.stages - 1):
            first, end = self.layout.bounds[stage]
            parts.append(self.comm.recv((end - first, classes, batch), self._rank(stage), TAG_GOODNESS))
        return torch.cat([*parts, goodness]).permute(2, 0, 1)  # (batch, blocks, classes)

    def negative_labels(self, batch: Batch, readout_logits: torch.Tensor | None) -> torch.Tensor | None:
        """Draw this batch's negative labels; the first stage returns its `(batch,)` share, others None.

        Every replica draws for the whole global batch from the same generator and keeps its
        own rows, so the labels equal those of a single process that trains on the global batch.
        """
        negatives = self.config.negatives
        generator = self.trainer.negatives_generator
        if negatives.kind == "random":
            if not self.is_first:
                return None
            return batch.local_part(random_wrong_labels(batch.global_labels, self.num_classes, generator))

        if negatives.hard_source == "readout":
            scores = readout_logits
        else:
            goodness = self.goodness_pass(batch.images)
            scores = None if goodness is None else goodness[:, self.skip_first :].sum(dim=1)
        if self.is_last:
            all_scores = self._gather_replicas(scores, batch)
            labels = hard_wrong_labels(all_scores, batch.global_labels, generator, negatives.temperature)
            labels = batch.local_part(labels)
            if self.is_first:
                return labels
            self.comm.send(labels, self._rank(0), TAG_NEGATIVES)
            return None
        if self.is_first:
            return self.comm.recv((batch.size,), self._rank(self.layout.stages - 1), TAG_NEGATIVES, dtype=torch.int64)
        return None

    def _gather_replicas(self, scores: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Concatenate the `(share, classes)` scores of all replicas into `(global_batch, classes)`."""
        if self.layout.replicas == 1:
            return scores
        longest = max(batch.share_sizes)
        padded = torch.zeros(longest, scores.shape[1], dtype=scores.dtype, device=scores.device)
        padded[: scores.shape[0]] = scores
        parts = self.comm.all_gather(padded, self.replica_group, self.layout.replicas)
        return torch.cat([part[:size] for part, size in zip(parts, batch.share_sizes)])

    def train_pass(
        self, batch: Batch, negative_labels: torch.Tensor | None, active: int | None, stats: torch.Tensor
    ) -> None:
        """Train this stage's blocks on the positive and negative activities from below.

        Args:
            batch: this replica's share of the minibatch.
            negative_labels: `(batch,)` on the first stage, None elsewhere.
            active: the only block to train (greedy schedule), or None for all.
            stats: `(num_blocks, 3)` loss and positive and negative goodness, filled in place.
        """
        if active is not None and self.first_block > active:
            return  # blocks above the active one take no part in this greedy phase
        size = batch.size
        if self.is_first:
            classes, strength = self.num_classes, self.network.label_strength
            h_pos = self.network.normalize(overlay_labels(batch.images, batch.labels, classes, strength))
            h_neg = self.network.normalize(overlay_labels(batch.images, negative_labels, classes, strength))
        else:
            both = self.comm.recv((2 * size, self.in_width), self._rank(self.stage - 1), TAG_TRAIN)
            h_pos, h_neg = both[:size], both[size:]

        # The same steps as Trainer.train_batch, on this stage's blocks.
        for index, block in enumerate(self.blocks, start=self.first_block):
            if active is not None and index > active:
                break
            if active is not None and index < active:
                with torch.no_grad():
                    a_pos, a_neg = block(h_pos), block(h_neg)
            else:
                a_pos, a_neg, metrics = block.train_step(h_pos, h_neg)
                stats[index, 0] = metrics["loss"]
                stats[index, 1] = metrics["goodness_pos"]
                stats[index, 2] = metrics["goodness_neg"]
            h_pos, h_neg = self.network.normalize(a_pos), self.network.normalize(a_neg)
        if not self.is_last and (active is None or self.end_block <= active):
            self.comm.send(torch.cat([h_pos, h_neg]), self._rank(self.stage + 1), TAG_TRAIN)  # (2 * batch, units)

    # -- one batch and one epoch ------------------------------------------------------------

    def train_batch(self, batch: Batch, active: int | None) -> torch.Tensor:
        """Run one minibatch through the pipeline and update this stage's blocks and read-out.

        Returns:
            `(num_blocks * 3 + 2,)` values laid out as `Trainer.train_batch` returns them, zero
            outside this stage and weighted by this replica's share, so that their sum over all
            ranks is what a single process reports for the global batch. The last value (read-out
            errors) is a count and is not weighted.
        """
        num_blocks = len(self.network.blocks)
        device = self.trainer.device
        stats = torch.zeros(num_blocks, 3, device=device)
        readout_stats = torch.zeros(2, device=device)
        if self.sync is not None:
            self.sync.share = batch.share

        logits = None
        if self.trainer.readout is not None:
            activities = self.neutral_pass(batch.images)
            if self.is_last:
                logits, loss = self.readout.train_step(activities, batch.labels)
                readout_stats[0] = loss * batch.share
                readout_stats[1] = (logits.argmax(dim=1) != batch.labels).sum()
        with torch.no_grad():
            negative_labels = self.negative_labels(batch, logits)
        self.train_pass(batch, negative_labels, active, stats)
        return torch.cat([(stats * batch.share).flatten(), readout_stats])

    def train_epoch(self, progress: bool = False) -> tuple[torch.Tensor, int, float, float]:
        """Run the next epoch's minibatches on this rank.

        Returns:
            `(sums, num_batches, lr_gain, elapsed_s)`: this rank's sum of `train_batch` values,
            the number of global minibatches, the learning-rate gain and this rank's wall time.
        """
        trainer, train_cfg = self.trainer, self.config.train
        epoch = trainer.epoch + 1
        gain = trainer._apply_gain(epoch)
        active = trainer.active_layer(epoch)
        images, labels = trainer.data.train_images, trainer.data.train_labels
        n = images.shape[0]
        # Every rank draws the same permutation, so all agree on the batches without messages.
        order = epoch_order(n, train_cfg.shuffle, trainer.shuffle_generator, trainer.device)
        num_batches = math.ceil(n / train_cfg.batch_size)

        self.network.train()
        sums = torch.zeros(len(self.network.blocks) * 3 + 2, device=trainer.device)
        start = time.perf_counter()
        bar = tqdm(total=num_batches, desc=f"epoch {epoch}/{trainer.total_epochs}", unit="batch",
                   disable=not progress, leave=False, dynamic_ncols=True)
        for b in range(num_batches):
            index = order[b * train_cfg.batch_size : (b + 1) * train_cfg.batch_size]
            sums += self.train_batch(Batch(images, labels, index, self.replica, self.layout.replicas), active)
            bar.update(1)
        bar.close()
        self.comm.flush()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)
        return sums, num_batches, gain, time.perf_counter() - start

    # -- evaluation -------------------------------------------------------------------------

    @torch.no_grad()
    def count_errors(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Count this replica's wrong predictions on one split, through the pipeline.

        Replicas split the samples between them; the counts of all ranks add up to those of
        `forwardforward.training.evaluate_split`.

        Returns:
            `(2 + num_blocks,)` counts on the last stage (by goodness, by softmax, then by each
            block's goodness alone), zeros elsewhere.
        """
        num_blocks = len(self.network.blocks)
        counts = torch.zeros(2 + num_blocks, dtype=torch.long, device=self.trainer.device)
        was_training = self.network.training
        self.network.eval()
        shard = torch.tensor_split(torch.arange(images.shape[0], device=images.device), self.layout.replicas)[self.replica]
        batch_size = self.config.train.eval_batch_size
        for start in range(0, len(shard), batch_size):
            index = shard[start : start + batch_size]
            x, y = images[index], labels[index]
            goodness = self.goodness_pass(x)  # (batch, blocks, classes) on the last stage
            activities = self.neutral_pass(x) if self.trainer.readout is not None else None
            if not self.is_last:
                continue
            counts[0] += (goodness[:, self.skip_first :].sum(dim=1).argmax(dim=1) != y).sum()
            if self.readout is not None:
                counts[1] += (self.readout(activities).argmax(dim=1) != y).sum()
            counts[2:] += (goodness.argmax(dim=2) != y.unsqueeze(1)).sum(dim=0)
        self.comm.flush()
        self.network.train(was_training)
        return counts
