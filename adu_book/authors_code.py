"""The paper and its code: every difference between the paper's text and the authors' released code, as data.

The release is commit ``50a43db`` (2025-11-24, "Instruction about dataset") of the official repository
(kodaikawamura/domain-unlearning, read in the fork ali-ahmed925/ADU_new, whose later commits are a third party's and
are ignored here). Its development history before that date was read too: each :class:`Difference` says what changed
before the release, with commit hashes and dates (the author dates of the commits, Japan time).

The release runs on Dassl.pytorch, which is not in the repository. Where a behaviour comes from Dassl's defaults
(sampler, ``drop_last``, transforms, scheduler) the entry says so in :attr:`Difference.dassl`; those defaults were read
in KaiyangZhou/Dassl.pytorch at master (commit ``c61a1b5``, 2022-10-06), the repository the release's README tells
users to clone.

Each difference names the paper's words (with the source tags of our notes on the paper), the code's value and file,
the history, what the project's paper-text recipe does (``ours``) and the config switch that makes the
``authors_code`` recipe follow the code (``switch``; ``None`` with a ``note`` where it is not switched).
:func:`authors_switches` merges the switches: the ``authors_code`` preset of :mod:`adu_core.config` must equal it. Everything here was checked against the
code by reading it; the code itself is described, never copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DASSL", "DIFFERENCES", "KINDS", "NEW_SWITCH_FIELDS", "OTHER_FINDINGS", "RELEASE", "RELEASE_DATE",
           "REPOSITORY", "SAME_IN_BOTH", "Difference", "authors_switches", "by_key", "code_paths",
           "difference_cards", "differences_table", "overview_table", "table"]

RELEASE = "50a43db"
RELEASE_DATE = "2025-11-24"
REPOSITORY = "github.com/kodaikawamura/domain-unlearning (read in the fork ali-ahmed925/ADU_new)"
DASSL = "github.com/KaiyangZhou/Dassl.pytorch at c61a1b5 (2022-10-06)"

# Switch names the project's lead adds to RunConfig for the authors_code recipe (the tests accept these and the
# fields RunConfig already has).
NEW_SWITCH_FIELDS = ("text_ctx", "text_prompt_depth", "instapg_form", "forget_loss", "mmd_on", "mmd_median",
                     "domain_head", "sampler", "augment")

# What kind of difference an entry is; only "recipe switch" entries carry a switch.
KINDS = ("recipe switch", "dataset protocol", "precision", "schedule detail", "history", "release only",
         "figure protocol")


@dataclass(frozen=True)
class Difference:
    """One difference between the paper's text (as the project implements it) and the released code.

    ``code_file`` entries read ``path::anchor`` (a file at the release) or ``commit:path::anchor`` (a file of the
    development history that the release no longer has).
    """

    key: str  # identifier, unique
    topic: str  # a short title
    kind: str  # one of KINDS
    paper: str  # the paper's words, quoted or closely paraphrased, with the source tag of our notes on the paper
    code: str  # what the release does
    code_file: tuple[str, ...]  # where, at 50a43db (or at an earlier commit for history-only entries)
    history: str  # what changed before the release ("unchanged since <commit> (<date>)" when so)
    ours: str  # what the project's paper-text recipe does
    switch: dict[str, Any] | None  # config field -> the authors' value (the authors_code recipe), or None
    both_recipes: str = ""  # without a switch: what both recipes do (a switched one follows each source)
    note: str = ""  # why it is not switched, or what to keep in mind
    dassl: str = ""  # the Dassl default behind the code's value, and where it was read

    def __post_init__(self) -> None:
        if self.switched == bool(self.both_recipes):
            raise ValueError(f"difference {self.key!r}: say what both recipes do (both_recipes) exactly when it has "
                             "no switch; a switched difference follows the paper under one recipe, the code under "
                             "the other")

    @property
    def switched(self) -> bool:
        return self.switch is not None

    @property
    def recipes(self) -> str:
        """Which source each recipe follows."""
        return _SWITCHED if self.switched else f"both recipes: {self.both_recipes}"


_BOTH_OURS = "the project's protocol (a dataset choice, not a RunConfig switch)"
_SWITCHED = "paper recipe: the paper's text; authors_code recipe: the code (through the switch)"

DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        key="text_prompts",
        topic="Text side: the frozen template or learnable text prompts",
        kind="recipe switch",
        paper='"a photo of a [CLASS]." goes into the frozen text encoder (Fig. 2a, snowflake) [PP]; the template is '
              '"used without further adaptation" [PN].',
        code="Independent vision-language prompting: 8 learnable text tokens (N_CTX_TEXT) in each of the first 9 "
             "text-encoder layers (PROMPT_DEPTH_TEXT). Layer 0's tokens are the prompt learner's context, each later "
             "layer replaces positions 1-8 with its own fresh tokens. Since 8 > 4, the initial words 'a photo of a' "
             "are ignored: the context starts N(0, 0.02^2) and the class text is eight placeholder tokens followed "
             "by '{class}.'. Class text features are recomputed at every step and at test. The release has no "
             "frozen-template path any more.",
        code_file=("configs/trainers/vit_b16_ep50.yaml::TRAINER.IVLP",
                   "trainers/independent_VLAdapter_Prompt.py::VLPromptLearner.__init__",
                   "trainers/independent_VLAdapter_Prompt.py::CustomCLIP.forward",
                   "clip/model.py::ResidualAttentionBlock_IVLP_Prompt.forward"),
        history="The yaml's 8 text and 8 vision tokens at depth 9/9 are unchanged since dc45aad (2024-10-08) (the file "
                "moved out of configs/trainers/IVLP/ in 1d1191a (2025-10-16)). But main.sh overrode both token counts "
                "to 4 (NCTX=4) from 1b2580d (2025-04-18) until 4191d6f (2025-10-16), with depths 9/9 from "
                "34625ff (2025-04-21): with 4 tokens the text context started from the embeddings of 'a photo of a', "
                "i.e. from the paper's template, and was then trained. 4191d6f (2025-10-16) dropped the override, so "
                "the release trains 8 randomly initialised tokens. Until b8f1572 (2025-10-16) a text depth of 0 "
                "selected frozen 'a photo of a {class}.' embeddings; the release removed that branch. The author "
                "confirms the text prompts are trained [I6].",
        ours="text_ctx = 0: class text features of the frozen template 'a photo of a {}.', computed once.",
        switch={"text_ctx": "@n_ctx"},
        note="The code's values at ViT-B/16 scale are 8 tokens and depth 9, its vision prompt length and depth; the "
             "switch ties them to the run's own (text_ctx = n_ctx; text_prompt_depth None = prompt_depth, capped at "
             "the text encoder's layers), so the paper tier gets 8 and 9 and the testbed 4 and 3. Trained: parameters named prompt_learner, VPT (vision and text), cross_attn, "
             "domain_classifier (the list also names adapter and added_linear, which match no parameter).",
    ),
    Difference(
        key="instapg",
        topic="InstaPG: where it sits and what the block is",
        kind="recipe switch",
        paper='InstaPG is "embedded in intermediate layers (i.e., the Transformer block) of the image encoder to '
              'generate additional instance-wise prompts ... via a cross-attention mechanism, where the learnable '
              'vision prompts serve as queries, while the image patch features act as keys and values" [PP]; '
              "layers, heads, normalisation and residuals are not stated.",
        code="One block, in the 9th encoder layer only (INSERT_LAYER_ATTN = 9, i.e. the last prompted layer; not in "
             "the earlier ones: INDEPENDENT_CROSS_ATTENTION False; vision branch only). Queries: that layer's "
             "learnable prompts; keys/values: the 196 patch tokens entering the layer, class token excluded "
             "(USE_CLASSTOKEN False). The block normalises queries and keys/values with their own LayerNorms, "
             "attends with the encoder's 12 heads, adds the result to the normalised queries, applies a second "
             "LayerNorm, then a 4x MLP with QuickGELU and its own residual. Its output replaces the layer's prompts. "
             "PyTorch's default initialisation (no zero start): from step 0 the layer-9 prompts depend on the image.",
        code_file=("clip/model.py::CrossAttention", "clip/model.py::FeedForward",
                   "clip/model.py::ResidualAttentionBlock_IVLP_Prompt.forward", "train_loop.py::extend_cfg"),
        history="The block has had this form since 57e125f (2024-12-10); a52fa32 (2024-12-18) allowed one block in "
                "every layer up to the insert layer and d553181 (2024-12-26) made the layer selectable. train_loop.py "
                "has fixed the 9th layer, one block, patch tokens as keys since it was created, 8000898 (2025-01-06), "
                "and turned InstaPG on in 01423bf (2025-01-06); the development main.sh also passed the insert layer "
                "as the vision depth, 9. Unchanged in the release apart from removed dead branches.",
        ours="instapg_form = 'paper', instapg_layers = None: a cross-attention (LayerNorm on queries and keys/values, "
             "the encoder's heads) at every prompted layer after the first (0-based 1-8), output projection "
             "zero-initialised, its output added to the learnable prompts; no second LayerNorm, no MLP.",
        switch={"instapg_form": "authors", "instapg_layers": (-1,)},
    ),
    Difference(
        key="forget_loss",
        topic="L_forget: cross-entropy to uniform or negative entropy",
        kind="recipe switch",
        paper="L_forget(B) = -(1/|B|) sum_i sum_j (1/|C|) log p_ij, cross-entropy to the uniform distribution "
              "(= entropy maximisation) on forgotten-domain samples [PP, KB].",
        code="The Shannon entropy of the softmax over classes, with 1e-5 added inside the log, averaged over the "
             "batch's forgotten-domain samples and subtracted: loss = CE(kept) - entropy(forgotten). Same optimum "
             "(a flat prediction), different gradient.",
        code_file=("utils/loss_fn.py::Entropy", "engine/trainer.py::TrainerDF.forward_backward"),
        history="The first forget loss, f4d8a4d (2024-07-09), was the paper's: cross-entropy to 1/|C| (eps 1e-7, "
                "with |C| hard-coded to 65). aac444a (2024-10-04) replaced it by the entropy with 1e-5 and the "
                "trainer's CE - entropy; unchanged since.",
        ours="forget_loss = 'uniform_ce'.",
        switch={"forget_loss": "neg_entropy"},
    ),
    Difference(
        key="mmd_weight",
        topic="Weight of the MMD term (lambda)",
        kind="recipe switch",
        paper="L_domain = gamma * L_CE - lambda * MMD^2 with gamma = 30, lambda = 10 [PP, PN].",
        code="main.sh passes --domainloss_weight 30 (gamma) and --mmd_weight 0.5 (lambda).",
        code_file=("main.sh", "train_loop.py::extend_cfg", "engine/trainer.py::TrainerDF.forward_backward"),
        history="The MMD weight appeared in e2a3ae4 (2025-04-19) with a sweep of gamma in {0 ... 30} x weight in "
                "{0 ... 10}; 34625ff (2025-04-21) swept gamma in {0, 0.5, 1} x weight in {0 ... 20}; "
                "c400ecf (2025-04-22) weight in {0, 0.5, 1, 3, 5, 7}; d5cbf44 (2025-04-25, Mini DomainNet) gamma in "
                "{1, 5} x weight in {0 ... 20}; 042c253 (2025-04-29, Office-Home) gamma = 30 x weight in "
                "{0, 10, 20, 30, 50}, the only grid that holds the paper's pair (30, 10). ea42506 (2025-07-25) fixed "
                "30 / 0.5 (a 'rebuttal' run), d95d879 (2025-07-25) 20 / 0.5, b8f1572 (2025-10-16) 30 / 0.5; "
                "unchanged since.",
        ours="lam = 10.",
        switch={"lam": 0.5},
        note="The code's MMD is on the domain logits with one per-pair Gaussian (mmd_on, mmd_kernel), so its 0.5 and "
             "the paper's 10 need not be on one scale.",
    ),
    Difference(
        key="mmd_sign",
        topic="Sign of the MMD term across the history",
        kind="history",
        paper="DDL maximises the MMD between domains: L_domain = gamma * L_CE - lambda * MMD^2 [PP].",
        code="At the release: 30 * CE - 0.5 * MMD, the MMD maximised, as in the paper.",
        code_file=("engine/trainer.py::TrainerDF.forward_backward",),
        history="e2a3ae4 (2025-04-19) added an MMD between the domains' classifier outputs (fixed bandwidth 1) to "
                "the CE, i.e. minimised it; 34625ff (2025-04-21) and f06dd44 (2025-04-21) paired it with an HSIC "
                "term (multiplied in the first, subtracted in the second); 2e31349 (2025-04-22) set "
                "gamma * CE - weight * MMD. d95d879 (2025-07-25, 'added imbalance files') flipped it to "
                "gamma * CE + weight * MMD, and the first public upload, b8f1572 (2025-10-16), "
                "shipped the '+'. bfd4af7 (2025-11-24, 'fixed MMD loss issue') restored the '-'. Code downloaded "
                "between 2025-10-16 and 2025-11-24 minimised the MMD.",
        ours="-lam * MMD^2 (maximised).",
        switch=None,
        both_recipes="maximise the MMD, as the paper and the release do",
        note="Not switched: the release and the paper agree. The '+' of the 2025-10-16 upload would be a negative "
             "lambda, which the config does not allow.",
    ),
    Difference(
        key="mmd_on",
        topic="What the MMD compares",
        kind="recipe switch",
        paper="MMD^2(B) = 2/(|D|(|D|-1)) sum_{d<d'} || mean_{x in B_d} phi(x) - mean_{x in B_d'} phi(x) ||^2_H on "
              "the latent features [PP].",
        code="The MMD is computed on the domain classifier's outputs (its 4*|C| logits, cast to fp32), not on the "
             "image embedding; its gradient reaches the prompts only through the classifier.",
        code_file=("engine/trainer.py::TrainerDF.forward_backward", "engine/trainer.py::total_pairwise_mmd"),
        history="On the classifier's outputs since the MMD first appeared, e2a3ae4 (2025-04-19); cast to fp32 since "
                "f06dd44 (2025-04-21); unchanged since.",
        ours="mmd_on = 'feature': the L2-normalised image embedding (ddl_feature = 'embedding').",
        switch={"mmd_on": "domain_logits"},
    ),
    Difference(
        key="mmd_kernel",
        topic="MMD kernel and bandwidth",
        kind="recipe switch",
        paper="The kernel phi is not given in the main text [PP]; the appendix compares kernels.",
        code="For each pair of domains in the batch: one Gaussian exp(-||x - y||^2 / (2 sigma^2)) with sigma = the "
             "median Euclidean distance between the two domains' samples (cross pairs only, torch's lower median, "
             "no gradient), recomputed per pair; biased estimate (self-pairs kept); a pair is skipped when either "
             "domain has fewer than 2 samples; the mean over the pairs kept. Squared distances are formed as "
             "|x|^2 + |y|^2 - 2 x.y.",
        code_file=("engine/trainer.py::median_pairwise_distance", "engine/trainer.py::gaussian_kernel",
                   "engine/trainer.py::total_pairwise_mmd"),
        history="e2a3ae4 (2025-04-19): one Gaussian with fixed bandwidth 1; 34625ff (2025-04-21): the per-pair "
                "median bandwidth (a batch-wide median helper was defined but unused until b8f1572 (2025-10-16)); "
                "unchanged since.",
        ours="mmd_median = 'batch', mmd_bandwidths = (0.25, 0.5, 1, 2, 4): the mean of five Gaussians "
             "exp(-d^2 / (b * s)) with s the median squared distance over the whole batch; biased; pairs of domains "
             "present with at least one sample.",
        switch={"mmd_median": "pair", "mmd_bandwidths": (2.0,)},
        note="exp(-d^2 / (2 median_d^2)) is the project's kernel with b = 2 and s = the pair's median squared "
             "distance. The at-least-2-samples rule is not switched: with 128 random images from 4 domains a domain "
             "with fewer than 2 is rare.",
    ),
    Difference(
        key="domain_head",
        topic="Domain classifier outputs",
        kind="recipe switch",
        paper='"a fully connected layer" giving confidence scores p^d over the domains; '
              "L_CE = -(1/|B|) sum_i sum_{j=1}^{|D|} d_ij log p^d_ij [PP].",
        code="A linear layer from the 512-d L2-normalised image embedding to 4*|C| outputs (2*|C| for ImageNetDF, "
             "6*|C| for DomainNetDF), in fp16, trained with CE against the domain index 0..|D|-1: only the first |D| "
             "outputs are ever targets, the other 4*|C| - |D| (256 on Office-Home) are only pushed down. The domain "
             "accuracy printed at test (Table 4's quantity) is the argmax over all 4*|C| outputs.",
        code_file=("trainers/independent_VLAdapter_Prompt.py::CustomCLIP.__init__",
                   "engine/trainer.py::TrainerDF.forward_backward", "utils/eval_acc.py::compute_acc_for_df_eval"),
        history="Until b8f1572 (2025-10-16) the size followed a flag: |D| outputs by default (main.sh never passed "
                "--domain_class_divided), |D|*|C| only for a variant whose target was class * |D| + domain. The "
                "release kept the |D|*|C| size and the domain-index target.",
        ours="domain_head = 'domains': Linear(512, |D|) in fp32; Table 4 from it (domain_acc_head) and a probe.",
        switch={"domain_head": "domains_x_classes"},
        note="The MMD runs on these 4*|C| logits (mmd_on).",
    ),
    Difference(
        key="batch",
        topic="Batch size and sampler",
        kind="recipe switch",
        paper="Not stated: [PN] gives SGD, lr 0.0025 and 50 epochs only.",
        code="Batches of 128 drawn by a random permutation each epoch, not domain-balanced, with the last partial "
             "batch dropped whenever the pool holds at least 128 images: floor(N/128) steps per epoch, i.e. 16 on "
             "Office-Home's 2,080-image pool (32 images unused each epoch), 31 on Mini DomainNet's 4,032, 1 on the "
             "testbed's 224 (96 unused).",
        code_file=("configs/trainers/vit_b16_ep50.yaml::DATALOADER.TRAIN_X.BATCH_SIZE",
                   "engine/dataset_manager.py::build_data_loader"),
        history="Batch 128 unchanged since dc45aad (2024-10-08). The log committed in 1b2580d (2025-04-18) shows 8 "
                "batches per epoch for a 1,040-image (4-shot) pool.",
        ours="batch_size = 32, sampler = 'balanced': 8 images of every domain in each batch, ceil(N/32) batches "
             "(65 on Office-Home, 7 on the testbed).",
        switch={"batch_size": 128, "sampler": "random"},
        dassl="Sampler: Dassl's default DATALOADER.TRAIN_X.SAMPLER = 'RandomSampler' (dassl/config/defaults.py), "
              "which dassl/data/samplers.py::build_sampler maps to torch's RandomSampler; drop_last = is_train and "
              "len(pool) >= batch size in the release's copy of Dassl's build_data_loader.",
    ),
    Difference(
        key="augment",
        topic="Training augmentation",
        kind="recipe switch",
        paper="Not stated.",
        code="Random-resized crop of the whole decoded image to 224x224 (area fraction 0.08-1, aspect ratio 3/4-4/3, "
             "bicubic resampling), horizontal flip with probability 0.5, CLIP mean/std.",
        code_file=("configs/trainers/vit_b16_ep50.yaml::INPUT", "engine/dataset_manager.py::DataManager.__init__"),
        history="Unchanged since dc45aad (2024-10-08); the 1b2580d (2025-04-18) log prints this transform.",
        ours="augment = 'centre_crop': the crop and flip are taken from the 224x224 centre crop decoded once (shorter "
             "side to 224, bicubic) and resampled bilinearly on the device, sides clamped instead of retried.",
        switch={"augment": "full_image"},
        dassl="dassl/data/transforms/transforms.py::_build_transform_train (RandomResizedCrop with "
              "INPUT.RRCROP_SCALE, default (0.08, 1.0), and INPUT.INTERPOLATION, 'bicubic' in the yaml; "
              "RandomHorizontalFlip).",
    ),
    Difference(
        key="precision",
        topic="Numerical precision",
        kind="precision",
        paper="Not stated.",
        code="PREC 'fp16': CLIP's weights are converted to half precision and the model runs in fp16 without "
             "autocast or loss scaling (a GradScaler exists only for 'amp'). The text context, the InstaPG block and "
             "the domain classifier are fp16 parameters updated in fp16 by SGD (fp16 momentum, no fp32 copy; InstaPG's "
             "own LayerNorms are cast to fp16 at the first forward), while the deep prompt vectors stay fp32 and are "
             "cast to half in the forward. CLIP's LayerNorms compute in fp32; the MMD is computed in fp32 on the fp16 "
             "logits; a non-finite loss stops the run.",
        code_file=("configs/trainers/vit_b16_ep50.yaml::TRAINER.IVLP.PREC",
                   "trainers/independent_VLAdapter_Prompt.py::IVLP_VL_Adapter_Prompt.build_model",
                   "clip/model.py::convert_weights", "clip/model.py::ResidualAttentionBlock_IVLP_Prompt"),
        history="PREC fp16 unchanged since dc45aad (2024-10-08).",
        ours="precision = 'auto': bf16 autocast on GPUs that have it (fp16 with loss scaling where not), fp32 master "
             "weights.",
        switch=None,
        both_recipes="the project's mixed precision",
        note="Hardware precision, not switched. In pure fp16 an SGD step is rounded to the weight's fp16 grid (2^-16 "
             "~ 1.5e-5 for a weight near 0.02): steps below half of it are lost, which can slow the fp16 parameters.",
        dassl="The stop on a non-finite loss is Dassl's TrainerBase.model_backward (dassl/engine/trainer.py).",
    ),
    Difference(
        key="lr_schedule",
        topic="Cosine span after the warm-up",
        kind="schedule detail",
        paper="SGD, lr 0.0025, 50 epochs [PN]; the schedule is not stated.",
        code="Cosine annealing with T_max = 50 epochs behind a 1-epoch constant warm-up at 1e-5, stepped once per "
             "epoch (at the epoch's last batch). Epoch 1 runs at 1e-5; epoch e >= 2 at "
             "0.00125 * (1 + cos(pi (e - 2) / 50)): 2.5e-3 at epoch 2, 2.4975e-3 at epoch 3, 9.9e-6 at epoch 50 (the "
             "cosine never reaches its end).",
        code_file=("configs/trainers/vit_b16_ep50.yaml::OPTIM", "engine/trainer.py::TrainerDF.forward_backward"),
        history="Unchanged since dc45aad (2024-10-08); the 1b2580d (2025-04-18) log shows 1.0e-05 in epoch 1, 2.5e-03 "
                "in epoch 2 and 2.4975e-03 in epoch 3.",
        ours="The cosine spans epochs - warm-up = 49 epochs: epoch 50 at 2.6e-6.",
        switch=None,
        both_recipes="the project's span",
        note="Negligible schedule detail, not switched: the two schedules differ by at most 4.6e-5 (1.8 % of the "
             "peak) at any epoch.",
        dassl="dassl/optim/lr_scheduler.py::build_lr_scheduler builds CosineAnnealingLR(T_max = MAX_EPOCH) wrapped in "
              "ConstantWarmupScheduler (WARMUP_RECOUNT default True): while the warm-up lasts the lr is the constant, "
              "then the successor's lr, first its initial 0.0025, then its steps.",
    ),
    Difference(
        key="office_home_protocol",
        topic="Office-Home: pool and test set",
        kind="dataset protocol",
        paper="Office-Home, 4 domains, 65 classes [PP, KB]; the split is not stated.",
        code="Dassl's office_home_dg archive, {art, clipart, product, real_world}/{train, val}/<class>/: the "
             "few-shot pool is drawn from train/, the test set is val/ of the four domains (1,656 images in the "
             "authors' log; the validation loader is the same set); only *.jpg files are read. Pool and test are "
             "disjoint.",
        code_file=("datasets/office_home_df.py::OfficeHomeDF.__init__", "datasets/office_home_df.py::read_data"),
        history="3c0422f (2024-07-07) tested on train + val (overlapping the pool); 7a663d7 (2024-07-09) switched to "
                "val/; unchanged since. The count is in outputs/.../log.txt committed in 1b2580d (2025-04-18) and "
                "deleted in e2a3ae4 (2025-04-19): 1,656 val and 1,656 test images.",
        ours="With Dassl's office_home_dg copy, the authors' protocol (pool = train/, test = val/; recorded as "
             "'authors-50a43db' in run.json). With the original Office-Home release, the project's own held-out "
             "split (adu-split-v1, 20 % per (domain, class) by hash; 3,123 test images, 12,465 in the pool), marked "
             "as not the authors'.",
        switch=None,
        both_recipes="the layout of the copy decides (a dataset protocol, not a RunConfig switch)",
        note="Dataset protocol: the copy's layout chooses it (adu data verify office_home names the layout).",
    ),
    Difference(
        key="fewshot_sampling",
        topic="Drawing the 8 shots",
        kind="dataset protocol",
        paper='"Only 8 labeled samples per domain are used" [PN], read as 8 per class per domain; '
              "3 seeds averaged [I6].",
        code="Per (class, domain) cell, in the order the items were read: random.sample of 8 after "
             "random.seed(seed), where seed is the run's seed (1, 2, 3), so each seed draws its own subset; a cell "
             "with fewer than 8 images is filled by random.choices, with replacement. Office-Home's order comes "
             "from glob (file-system order, unsorted), so its draw is not portable between machines; Mini "
             "DomainNet's comes from the split files.",
        code_file=("datasets/office_home_df.py::OfficeHomeDF.generate_fewshot_dataset",
                   "datasets/domainnet_mini_df.py::DomainNetMiniDF.generate_fewshot_dataset",
                   "train_loop.py::extend_cfg"),
        history="Sampling per (class, domain) since 5e3ca3b (2024-11-15), seeded by the run seed. 68bbce7 (2025-01-06) "
                "gave the draw its own seed (--dataset_seed; main.sh passed 0), so one subset served every training "
                "seed; b8f1572 (2025-10-16) tied it to the run seed again. Training seeds: [1, 6, 7] for Office-Home "
                "and Mini DomainNet from 4d538c1 (2025-01-06), overridden to [1] from c400ecf (2025-04-22) to "
                "d95d879 (2025-07-25); [1, 2, 3] since b8f1572 (2025-10-16).",
        ours="Committed split files: per (domain, class) the first K train images ordered by "
             "sha256('adu-fewshot-v1|dataset|seed|path'), nested across K, never with replacement (a short cell "
             "gives what it has); seeds 1, 2, 3.",
        switch=None,
        both_recipes=_BOTH_OURS,
        note="Dataset protocol, not a switch.",
    ),
    Difference(
        key="imagenet_protocol",
        topic="ImageNet and ImageNet-Sketch",
        kind="dataset protocol",
        paper='"ImageNet has only two domains, so only |D_forget| = 1 is tested" (Table 1 caption) [KB]; the second '
              "domain is not named.",
        code="Not in the release: its ImageNet loaders were deleted, the trainer still names ImageNetDF with domains "
             "real and sketch (and a 2*|C| domain head), and train_loop.py rejects the dataset name. In the history "
             "(read at d95d879): real = ImageNet train (pool) and ImageNet val (test); sketch = ImageNet-Sketch "
             "split per class by a stratified shuffle into 80 % pool and 20 % test (random_state 42; about 10,178 of "
             "its 50,889 images); 8 shots per class per domain from Dassl's generate_fewshot_dataset, i.e. from "
             "Python's global random state after the run seed; class names from a classnames.txt.",
        code_file=("trainers/independent_VLAdapter_Prompt.py::CustomCLIP.__init__",
                   "engine/trainer.py::TrainerDF.__init__", "train_loop.py::get_loop_prepare",
                   "d95d879:datasets/imagenet_df.py::ImageNetDF", "d95d879:datasets/imagenet_sketch.py::read_data",
                   "d95d879:datasets/imagenet.py::ImageNet.__init__"),
        history="ImageNetDF added in ba36c87 (2025-01-16); the stratified Sketch split in 0bc985b (2025-01-16); "
                "paths fixed in 6457b18 (2025-04-27, 'made ImageNet available'); all deleted in b8f1572 (2025-10-16).",
        ours="ImageNet train -> val; ImageNet-Sketch by the project's hash rule with a 20 % test fraction per class "
             "(the authors' proportion and stratification, other images: their split ran over files in the order "
             "their file system listed them, which no sorted list redraws); class names from open_clip's ImageNet "
             "list.",
        switch=None,
        both_recipes=_BOTH_OURS,
        note="Dataset protocol (development history only), not a switch.",
    ),
    Difference(
        key="pacs_protocol",
        topic="PACS in the development history (the testbed's dataset)",
        kind="dataset protocol",
        paper="Not stated: PACS is in none of the paper's tables, and the paper does not name a fourth dataset.",
        code="Not in the release. In the history: pool from the official *_train_kfold lists, test on "
             "*_test_kfold, which list every image of a domain (art_painting: 2,048 = 1,840 train + 208 crossval), "
             "so the test set contained the pool.",
        code_file=("d95d879:datasets/pacs_df.py::PACSDF.__init__", "d95d879:train_loop.py::get_loop_prepare"),
        history="Added in dd4a9f1 (2024-10-04); seeds [1, 2, 3] from 9327521 (2025-02-27); deleted in "
                "b8f1572 (2025-10-16).",
        ours="Testbed: pool from *_train_kfold, test on *_crossval_kfold (1,014 images), disjoint.",
        switch=None,
        both_recipes=_BOTH_OURS,
        note="Dataset protocol. The list sizes were counted in the PACS split files of the shared data folder.",
    ),
    Difference(
        key="class_names",
        topic="Class-name text",
        kind="dataset protocol",
        paper='Only the template "a photo of a [CLASS]." [PP]; how folder names become words is not stated.',
        code="Office-Home: the class folder name lower-cased, '_' -> ' ' ('alarm clock', 'flipflops', "
             "'postit notes', 'tv'); Mini DomainNet and DomainNet: the folder name of the split list, '_' -> ' ', "
             "hyphens kept ('teddy-bear').",
        code_file=("datasets/office_home_df.py::read_data",
                   "trainers/independent_VLAdapter_Prompt.py::VLPromptLearner.__init__",
                   "datasets/domainnet_mini_df.py::DomainNetMiniDF._read_data"),
        history="Lower-casing since 913dd18 (2024-07-07); unchanged since.",
        ours="Office-Home: lower case with spaces except 'flip flops', 'post-it notes', 'TV'; DomainNet: '_' and '-' "
             "-> ' '.",
        switch=None,
        both_recipes=_BOTH_OURS,
        note="Dataset-level text, not switched. The Office-Home words assume office_home_dg keeps the original "
             "folder spellings (Flipflops, Postit_Notes, TV); the archive was not available to check.",
    ),
    Difference(
        key="ablation_switches",
        topic="Baseline and ablations in the release",
        kind="release only",
        paper='Table 1\'s Baseline "trains the vision prompt using L_memorize and L_forget" [KB]; Tables 2-3 switch '
              "DDL, InstaPG, the CE and the MMD [KB, PN].",
        code="No named switches: every step adds 30 * CE - 0.5 * MMD and expects domain logits (the run needs "
             "--use_domain_cls_loss); InstaPG is set on in train_loop.py (a command-line yacs option can turn it "
             "off). The ablations are reachable only by zeroing --domainloss_weight / --mmd_weight and passing "
             "'USE_CROSSATTENTION False'; the text prompts, the entropy loss and the batches of 128 stay, so such a "
             "Baseline is not the paper's vision-prompt Baseline.",
        code_file=("engine/trainer.py::TrainerDF.forward_backward", "train_loop.py::extend_cfg", "main.sh"),
        history="main.sh from ea42506 (2025-07-25) to 1d1191a (2025-10-16) had a BASELINE flag that turned InstaPG "
                "off while still passing --use_domain_cls_loss (DDL weights unchanged); the upload of b8f1572 "
                "(2025-10-16) and 1d1191a (2025-10-16) set BASELINE=True; 4191d6f (2025-10-16) removed the flag.",
        ours="Method 'baseline' = instapg False, ddl False; Table 2/3 switches instapg, ddl, ddl_ce, ddl_mmd.",
        switch=None,
        both_recipes="the project's method and switches; under authors_code they combine with the "
                "recipe's other switches",
        note="Not a training difference of the full method: how the release can (not) run the other rows.",
    ),
    Difference(
        key="attention_maps",
        topic="Attention-map method",
        kind="figure protocol",
        paper="Attention maps (Mini DomainNet, birds; rows Original, zero-shot CLIP, Ours) [PP]; the method is not "
              "stated.",
        code="TrainerDF.get_attention_map (not called by train_loop.py): for each training-loader image (an "
             "augmented crop), the 14x14 cosine similarity between each final patch token (after the last "
             "LayerNorm and the projection) and the ground-truth class's text feature, resized to 224, min-max "
             "scaled, colour-mapped and overlaid on the original image resized to 224x224.",
        code_file=("engine/trainer.py::TrainerDF.get_attention_map",
                   "trainers/independent_VLAdapter_Prompt.py::CustomCLIP.forward"),
        history="The patch features and a script that loads a saved model for these maps were added in "
                "7bda915 (2025-03-06) and d1dd2a4 (2025-03-06); the script was deleted in b8f1572 (2025-10-16), the "
                "method kept.",
        ours="Attention rollout of the class token on test images (adu_core/attribution.py).",
        switch=None,
        both_recipes="the project's figure method",
        note="Figure protocol, not a RunConfig switch.",
    ),
    Difference(
        key="tsne",
        topic="t-SNE sample set",
        kind="figure protocol",
        paper="t-SNE of zero-shot CLIP vs Ours, domains clipart, painting, real, sketch [KB]; the samples are not "
              "stated.",
        code="TrainerDF.get_tsne_plots (not called in the release): t-SNE (perplexity min(30, n - 1), "
             "random_state 42) of the normalised image embeddings of the training loader's images (the few-shot "
             "pool, augmented, full batches only), coloured by domain. test() also writes per-class test "
             "embeddings to TensorBoard's projector.",
        code_file=("engine/trainer.py::TrainerDF.get_tsne_plots", "engine/trainer.py::TrainerDF.test"),
        history="t-SNE scripts from b96e005 (2025-03-09); d95d879 (2025-07-25) called get_tsne_plots after every "
                "run; b8f1572 (2025-10-16) removed the call.",
        ours="t-SNE of test images, a fixed number per domain, PCA start (adu_book/figures.py).",
        switch=None,
        both_recipes="the project's figure method",
        note="Figure protocol, not a RunConfig switch.",
    ),
)

# What the release and the project's paper-text recipe share, each checked in the code.
SAME_IN_BOTH: tuple[str, ...] = (
    "Backbone: CLIP ViT-B/16 with OpenAI's weights, 224x224 input, CLIP's mean and std.",
    "Vision prompts: 8 tokens in each of the first 9 layers, N(0, 0.02^2) start, appended after the patch tokens; "
    "layer 1's pass the pre-LayerNorm with the image tokens and get no positional embedding; each later prompted "
    "layer replaces the previous prompt outputs; after layer 9 they ride along and the class token is pooled "
    "(history: main.sh passed 4 tokens from 1b2580d (2025-04-18) until 4191d6f (2025-10-16)).",
    "InstaPG's inputs: that layer's learnable prompts as queries, the patch tokens entering the layer (no class "
    "token) as keys and values, the encoder's 12 heads.",
    "Domain classifier input: the L2-normalised image embedding that the class logits use; trained jointly with "
    "the prompts; gamma = 30.",
    "Loss averaging: CE over the batch's kept-domain samples, L_forget over its forgotten-domain samples (0 when "
    "absent), the domain CE over all samples.",
    "Optimiser: SGD, lr 0.0025, momentum 0.9 and weight decay 5e-4 (Dassl defaults) on every trained tensor "
    "(biases, LayerNorms and the domain classifier included) in one parameter group; 50 epochs; one constant "
    "warm-up epoch at 1e-5; the learning rate changes once per epoch.",
    "Logit scale: CLIP's learnt value (100), frozen.",
    "Shots: 8 per (class, domain), 2,080 images on Office-Home (history: main.sh used 4 until c400ecf (2025-04-22)).",
    "Seeds 1, 2, 3, each with its own few-shot draw; forget sets: every non-empty proper subset of the domains.",
    "Test transform: shorter side to 224 (bicubic), centre crop 224.",
    "Evaluation: the last-epoch model, once after training (Dassl's TEST.FINAL_MODEL 'last_step'; no selection); "
    "Mem and For pooled over the kept / forgotten domains' test images, For = 100 - accuracy; H per run; means over "
    "the forget sets of one size, then over seeds.",
    "Mini DomainNet: Dassl's splits_mini <domain>_{train,test}.txt lists, 126 classes; pool from train, test on test.",
    "Office-Home and Mini DomainNet: the pool and the test set are disjoint.",
)

# Facts of the release and its history that are neither a difference of the method nor shared.
OTHER_FINDINGS: tuple[str, ...] = (
    "The release supports full DomainNet too (domainnet_df: 6 domains, the official lists, a 6*|C| domain head; "
    "main.sh lists office_home_df, domainnet_mini_df, domainnet_df): the release's candidate for a fourth dataset. "
    "It also builds an unused loader over DomainNet's whole train lists.",
    "Mini DomainNet's loader reads from a hard-coded /data/domainnet and ignores --root.",
    "train_loop.py loops over seeds 1-3 and all forget sets itself; main.sh's SEED=1 is overwritten.",
    "Imbalance experiment, d95d879 (2025-07-25), 'rebuttal': a DROP_RATE share of one domain's samples was masked "
    "out of L_memorize and L_forget (not of the DDL terms), swept 0-1 in imbalance0-3.sh; removed in "
    "b8f1572 (2025-10-16).",
    "Soft domain labels, 77f024e (2025-02-16): the softmax of minus the Euclidean distance of each few-shot image's "
    "zero-shot feature to the four domain centroids (built with the true domain labels), trained with a KL loss and "
    "from beeae62 (2025-03-31) refreshed each epoch from the domain classifier; the KL left the trainer in "
    "34625ff (2025-04-21), the rest in b8f1572 (2025-10-16). Whether this is the appendix's pseudo-label "
    "experiment is not stated.",
    "Unlike Dassl's own OfficeHomeDG, which tests on all images of a target domain, the authors' loader tests on "
    "val/ only (since 7a663d7 (2024-07-09)).",
    "cudnn.benchmark is on and nothing requests deterministic kernels: the release's runs are not bit-reproducible.",
)


def code_paths(diff: Difference) -> list[tuple[str, str]]:
    """(commit, path) of each ``code_file`` entry: the release unless the entry names an earlier commit."""
    out = []
    for entry in diff.code_file:
        location = entry.split("::", 1)[0]
        commit, sep, path = location.partition(":")
        out.append((commit, path) if sep else (RELEASE, location))
    return out


def authors_switches() -> dict[str, Any]:
    """Every difference's switch merged: the config values of the ``authors_code`` recipe.

    Raises ValueError if two differences set one field to different values.
    """
    merged: dict[str, Any] = {}
    for diff in DIFFERENCES:
        for name, value in (diff.switch or {}).items():
            if name in merged and merged[name] != value:
                raise ValueError(f"{diff.key} sets {name}={value!r}, another difference {merged[name]!r}")
            merged[name] = value
    return merged


def by_key(key: str) -> Difference:
    """The difference named ``key``."""
    for diff in DIFFERENCES:
        if diff.key == key:
            return diff
    raise KeyError(f"no difference {key!r}; known: {', '.join(d.key for d in DIFFERENCES)}")


def differences_table():
    """The differences as a pandas DataFrame, one row each (switches written as ``field=value``)."""
    import pandas as pd

    rows = []
    for d in DIFFERENCES:
        rows.append({"topic": d.topic, "kind": d.kind, "paper": d.paper, "code": d.code,
                     "file (50a43db)": "; ".join(d.code_file), "history": d.history, "ours (paper recipe)": d.ours,
                     "recipes": d.recipes, "switch": _switch_text(d), "note": d.note, "Dassl": d.dassl})
    return pd.DataFrame(rows, index=pd.Index([d.key for d in DIFFERENCES], name="key"))


def _switch_text(diff: Difference) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in diff.switch.items()) if diff.switch else "none"


def overview_table():
    """The page's index of the differences, one row each: what differs, its kind, the switch that turns it on alone
    and, for a difference without one, what both recipes do (the whole record of each is in
    :func:`difference_cards`). A switched difference needs no recipe text: the paper recipe follows the paper's
    text and ``authors_code`` the release, as the page says once above the table."""
    import pandas as pd

    rows = [{"difference": d.topic, "kind": d.kind, "switch": _switch_text(d),
             "both recipes": d.both_recipes or "–"} for d in DIFFERENCES]
    return pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="#"))


# (label, Difference attribute) in the order a card shows them; empty fields are left out
_CARD_FIELDS = (("The paper", "paper"), (f"The release ({RELEASE})", "code"), ("Where", "code_file"),
                ("Before the release", "history"), ("This project (paper recipe)", "ours"),
                ("Which recipe follows which", "recipes"), ("Switch", "switch"), ("Note", "note"),
                ("From Dassl", "dassl"))


def difference_cards() -> str:
    """Every difference as a collapsed HTML block, numbered as in :func:`overview_table`: the paper's words, the
    code's value and files, its history, what this project does, the recipes and switch, notes, Dassl's part.
    A table of all that was several page widths wide; a card keeps each difference readable at the text width."""
    from html import escape

    blocks = []
    for i, d in enumerate(DIFFERENCES, start=1):
        items = []
        for label, attr in _CARD_FIELDS:
            if attr == "code_file":
                value = "; ".join(f"<code>{escape(f)}</code>" for f in d.code_file)
            elif attr == "switch":
                value = f"<code>{escape(_switch_text(d))}</code>" if d.switch else "none"
            else:
                value = escape(getattr(d, attr))
            if value:
                items.append(f"<dt>{escape(label)}</dt><dd>{value}</dd>")
        blocks.append(f'<details class="adu-difference" id="difference-{escape(d.key)}"><summary>{i}. '
                      f"{escape(d.topic)} <em>({escape(d.kind)})</em></summary><dl>{''.join(items)}</dl></details>")
    return "\n".join(blocks)


def table():
    """The page's index of the differences: :func:`overview_table`."""
    return overview_table()
