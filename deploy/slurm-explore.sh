#!/bin/sh
# dmareplay explore as a Slurm job array: sbatch --array=0-15 deploy/slurm-explore.sh
# Each task reads SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT (less SLURM_ARRAY_TASK_MIN) as its shard.
#SBATCH --job-name=dmareplay-explore
#SBATCH --cpus-per-task=8
#SBATCH --time=01:00:00
npx dmareplay explore --workload remap --path iommu --variant asyncInvalidate=true --strategy pct --seeds 1..1600000 --time 55m \
  --db "results/shard-${SLURM_ARRAY_TASK_ID}.db"
# afterwards: npx dmareplay merge results/shard-*.db --into results/all.db
