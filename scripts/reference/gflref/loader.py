"""Dataset + aspect-ratio grouped batch sampler (mmdetection AspectRatioBatchSampler: images with w < h and
the others are batched separately; leftovers are batched together at the end of the epoch) + DataLoader."""
import random

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .transforms import DetectionTransform, collate


class DetectionDataset(Dataset):
    def __init__(self, records, transform):
        self.records = records
        self.transform = transform

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.transform(self.records[i])


class AspectRatioBatchSampler(Sampler):
    def __init__(self, records, batch_size, shuffle=True, seed=0, drop_last=False):
        self.flags = [0 if r.width < r.height else 1 for r in records]
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        n = len(self.flags)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        buckets = ([], [])
        for idx in order:
            bucket = buckets[self.flags[idx]]
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield list(bucket)
                bucket.clear()
        left = buckets[0] + buckets[1]
        for i in range(0, len(left), self.batch_size):
            chunk = left[i:i + self.batch_size]
            if len(chunk) == self.batch_size or not self.drop_last:
                yield chunk

    def __len__(self):
        full = sum(self.flags.count(f) // self.batch_size for f in (0, 1))
        left = sum(self.flags.count(f) % self.batch_size for f in (0, 1))
        return full + (left // self.batch_size if self.drop_last else -(-left // self.batch_size))


def _seed_worker(worker_id):
    # torch seeds `random` per worker from its base seed; re-derive so flips differ per worker and epoch.
    random.seed(torch.initial_seed() % 2 ** 32)


def make_loader(records, batch_size, img_scale=(1333, 800), train=True, workers=2, seed=0, pin_memory=False):
    """train: flip p=0.5 and shuffled aspect-ratio batches; else no flip, file order."""
    dataset = DetectionDataset(records, DetectionTransform(img_scale, flip_prob=0.5 if train else 0.0))
    sampler = AspectRatioBatchSampler(records, batch_size, shuffle=train, seed=seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                      pin_memory=pin_memory, worker_init_fn=_seed_worker if workers > 0 else None,
                      generator=g, persistent_workers=False)
