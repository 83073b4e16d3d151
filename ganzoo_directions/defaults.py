"""Every default of a run, in one place that imports no torch (so ``zoo-dirs --help`` stays instant).

The CLI's flags, :class:`ganzoo_directions.interfaces.RunSettings`, the metrics and the docs read
them from here; where the paper gives a value it is the paper's (Lu et al. / Voynov & Babenko).
"""

from __future__ import annotations

GENERATOR = "sngan-sprites"  # the embedded GAN: works offline, its true factors are known
METHOD = "orojar-span"  # OroJaR within the span of DeepSpectral's directions (docs/results.md section 10)
NUM_DIRECTIONS = 128  # K, capped at the generator's maximum (its latent dimension)
STEPS = 200_000  # the paper's training length; a generator's recommended_steps overrides it
BATCH_SIZE = 32
LR = 1e-4  # Adam, deformator and reconstructor
EPS_MAX = 6.0  # eps ~ U[-eps_max, eps_max] ...
EPS_MIN = 0.5  # ... with |eps| >= eps_min
SEED = 0
CHECKPOINT_EVERY = 500
LOG_EVERY = 25
RCA_PAIRS = 2000  # fresh pairs for the RCA a run reports
#: the image-change ranking of a set without a reconstructor (closed form): latents drawn, and the
#: renders it may cost (2K + 1 per latent): 64 latents for up to 32 directions, fewer above, at least 8
RANKING_SAMPLES = 64
RANKING_RENDERS = 64 * 65
RANKING_MIN_SAMPLES = 8
MAX_LATENT_DIM = 16384  # the largest latent a generator option may ask for (StyleGAN2 has 512)
MAX_STEPS = 100_000_000  # 500x the paper's 2e5; more is a typo, not a run
#: reconstructor kinds (``auto`` picks LeNet up to 64 px, ResNet-18 above)
RECONSTRUCTORS = ("lenet", "lenet-gn", "resnet18", "siamese")
RECONSTRUCTOR = "auto"
#: images larger than this are resized (anti-aliased) before R, as Voynov & Babenko's
#: shift_predictor_size: a 1024 px pair costs ResNet-18 ~240 GFLOP at full size; 0 in a run = this
RECONSTRUCTOR_SIZE = 128
AMP_MODES = ("auto", "bf16", "off")

# -- evaluation (``zoo-dirs evaluate``; :class:`ganzoo_directions.evaluation.EvalOptions`) ----------
#: every metric `evaluate` and `benchmark` know (their homes: ganzoo_directions.evaluation)
EVAL_METRICS = ("rca", "ppl")
EVAL_SAMPLES = 10_000  # pairs for RCA, samples for PPL (the paper's 10,000)
EVAL_SEED = 1234
EVAL_BATCH = 64
PPL_NET = "vgg"  # the paper's LPIPS backbone
PPL_NETS = ("vgg", "alex", "squeeze", "pixel", "vgg-random")
PPL_DELTA = 1e-4
PPL_SIZE = 256  # StyleGAN's PPL: images are area-downsampled to at most this before LPIPS
HELDOUT_STEPS = 2000
PROTOCOL_STEPS = 1500  # training steps of the MIG/DCI encoder
PROTOCOL_IMAGES = 10_000  # generated images it trains on

# -- the benchmark (``zoo-dirs benchmark``; what docs/results.md was measured with) ------------------
BENCHMARK_METHODS = (
    "oracle,oracle-lstsq=oracle:kind=lstsq,random,axes,sefa,ganspace,baseline,two-shift,centroid"
)
BENCHMARK_METRICS = ("factors", "mig", "dci", "rca")
BENCHMARK_SEEDS = "0,1,2"
BENCHMARK_SAMPLES = 1024
BENCHMARK_PROTOCOL_STEPS = 1000
BENCHMARK_PROTOCOL_IMAGES = 5000

# -- traversals and the explorer ------------------------------------------------------------------
TRAVERSE_STEPS = 7  # magnitudes per row of a PNG grid
TRAVERSE_TILE = 256  # largest tile side of a traversal picture (a 1024 px GAN's grid stays a few MB); 0: full
TRAVERSE_MIN_TILE = 96  # smallest: a 32 px generator's tiles are enlarged (nearest neighbour) to this
ANIMATION_FRAMES = 24  # frames of one GIF/MP4 loop (-range -> +range -> -range)
MAX_TRAVERSE_IMAGES = 4096  # renders one traversal may ask for (128 directions x 32 magnitudes)
ANIMATION_FPS = 12.0
EXPLORE_HOST = "127.0.0.1"  # the explorer listens on this machine only unless told otherwise
EXPLORE_PORT = 7860  # Gradio's usual port
EXPLORE_SLIDERS = 8  # sliders per page of directions, strongest first
RANGE_SIGMAS = 3.0  # the explorer's sliders reach this many std of the latents along each direction

# -- projecting real images (zoo-dirs project) ------------------------------------------------------
PROJECT_STEPS = 300
PROJECT_LR = 0.1  # Adam on the latent, as the StyleGAN2 projector (with its warm-up and ramp-down)
PROJECT_RESTARTS = 8  # z priors: each image starts from the best of this many draws
PROJECT_PRIOR_WEIGHT = 0.01  # weight of GeneratorAdapter.latent_prior_loss
