#!/usr/bin/env python3
"""Reference outputs of the categorium models (English and French) for tests/tests/categorium.rs.

The reference is independent of bertq's conversion: the original `tf_model.h5` is loaded by
`transformers`' TFBertForSequenceClassification and tokenized by BertTokenizer from the
package's vocabulary (exactly as categorium's own `test_models` does), in TensorFlow.
transformers 5 dropped TensorFlow, so this runs in a separate environment made by
scripts/setup_tf_reference_env.sh.

Usage: HF_HUB_OFFLINE=1 /work/tfvenv/bin/python scripts/gen_categorium_fixtures.py
Writes tests/fixtures/categorium.json: per language the labels (from <lang>_categorias.csv),
and per text the token ids, the logits and the predicted label.
"""
import csv
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import tensorflow as tf
import transformers
from transformers import BertTokenizer, TFBertForSequenceClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, ".cache/models/categorium/categorium-0.2.2/categorium/modelos")

TEXTS = {
    "en": [
        "Breaking news: the city council approved the new budget after a heated late-night vote.",
        "Top 10 tips to lose weight fast without giving up your favourite foods.",
        "Shop the summer sale: up to 70% off dresses, shoes and accessories, free delivery.",
        "The Lakers beat the Celtics 112-108 in overtime thanks to a last-second three-pointer.",
        "Install the latest version of our antivirus to protect your PC from ransomware.",
        "Our step-by-step recipe for a classic lasagna with homemade tomato sauce.",
        "Compare car insurance quotes and save hundreds of dollars on your premium.",
        "The new SUV features a hybrid engine, all-wheel drive and a 12-inch touchscreen.",
        "Book cheap flights and hotels to Paris, Rome and Barcelona this spring.",
        "Scientists discover a new species of frog in the Amazon rainforest.",
        "Learn Python online: free courses for beginners with certificates.",
        "Stock markets fell sharply today as investors worried about rising interest rates.",
        "Watch the official trailer of the new superhero movie coming to theaters in July.",
        "The band announced a world tour with concerts in London, Berlin and New York.",
        "How to train your puppy to sit, stay and walk on a leash.",
        "Best skincare routine for dry skin: moisturizers, serums and sunscreen.",
        "Download the free mobile game and compete with players around the world.",
        "The senator resigned after the corruption scandal became public.",
        "Find your dream home: apartments and houses for sale in your area.",
        "Symptoms of the flu include fever, cough, sore throat and fatigue.",
        "Apply now for a personal loan with low interest and fast approval.",
        "The university opens applications for its master's degree in data science.",
        "Gardening guide: when to plant tomatoes, peppers and cucumbers.",
        "Meet single women and men near you on the best dating site.",
        "The museum hosts an exhibition of impressionist paintings until December.",
        "Join our church community for Sunday worship and bible study.",
        "New smartphone review: great camera, long battery life, but expensive.",
        "Get the best deals on laptops, tablets and headphones this Black Friday.",
        "Wedding planning checklist: venue, dress, flowers, photographer and catering.",
        "Football transfer rumours: the striker is set to join the Spanish club.",
        "Yoga and meditation classes to reduce stress and improve sleep.",
        "Hiring now: software engineers, nurses and truck drivers, apply today.",
        "The kids' toy store has puzzles, dolls, board games and building blocks.",
        "Read the latest celebrity gossip and red carpet photos from the awards show.",
        "Online casino: play poker, roulette and slots and win real money.",
        "Home improvement ideas: paint your kitchen cabinets and install new tiles.",
        "The weather forecast predicts heavy rain and strong winds this weekend.",
        "Vegan restaurant in downtown serves burgers, salads and smoothies.",
        "Tax tips for small businesses: deductions, invoices and deadlines.",
        "Electric bikes and scooters are changing how people commute in cities.",
    ],
    "fr": [
        "Dernières nouvelles : le gouvernement annonce une réforme des retraites très contestée.",
        "Recette facile du gâteau au chocolat moelleux, prête en trente minutes.",
        "Soldes d'été : jusqu'à 70 % de réduction sur les robes, chaussures et accessoires.",
        "Le PSG s'impose 3-1 face à l'Olympique de Marseille au Parc des Princes.",
        "Téléchargez la nouvelle version de notre logiciel antivirus gratuit pour Windows.",
        "Comparez les assurances auto et économisez sur votre contrat dès aujourd'hui.",
        "La nouvelle voiture électrique offre une autonomie de 500 kilomètres.",
        "Réservez vos vols et hôtels pas chers pour Nice, Lyon et Bordeaux.",
        "Des chercheurs découvrent une nouvelle espèce de papillon en Guyane.",
        "Apprenez l'anglais en ligne avec des cours gratuits pour débutants.",
        "La Bourse de Paris termine en forte baisse, le CAC 40 recule de 2 %.",
        "Découvrez la bande-annonce du film qui sortira au cinéma en octobre.",
        "Le groupe de rock annonce une tournée avec des concerts à Paris et Montréal.",
        "Comment éduquer votre chiot : conseils pour la propreté et la marche en laisse.",
        "Routine beauté pour peau sèche : crème hydratante, sérum et écran solaire.",
        "Jouez gratuitement à notre jeu vidéo en ligne et affrontez des joueurs du monde entier.",
        "Le ministre a démissionné après la révélation du scandale de corruption.",
        "Appartements et maisons à vendre près de chez vous, trouvez votre futur logement.",
        "Les symptômes de la grippe : fièvre, toux, maux de gorge et fatigue.",
        "Demandez un crédit à la consommation avec un taux avantageux et une réponse rapide.",
        "L'université ouvre les inscriptions pour son master en intelligence artificielle.",
        "Jardinage : quand planter les tomates, les courgettes et les salades.",
        "Rencontrez des célibataires près de chez vous sur notre site de rencontre.",
        "Le musée du Louvre présente une exposition consacrée aux peintres impressionnistes.",
        "Rejoignez notre paroisse pour la messe du dimanche et le catéchisme.",
        "Test du nouveau smartphone : excellent appareil photo mais batterie décevante.",
        "Les meilleures offres sur les ordinateurs portables et les tablettes pour le Black Friday.",
        "Organiser son mariage : salle, robe, fleurs, photographe et traiteur.",
        "Mercato : l'attaquant français va rejoindre un club espagnol cet été.",
        "Cours de yoga et de méditation pour réduire le stress et mieux dormir.",
        "Offres d'emploi : infirmiers, développeurs et chauffeurs, postulez maintenant.",
        "Magasin de jouets : puzzles, poupées, jeux de société et jeux de construction.",
        "Les potins des célébrités et les photos du tapis rouge du Festival de Cannes.",
        "Casino en ligne : jouez au poker, à la roulette et aux machines à sous.",
        "Idées de bricolage : repeindre la cuisine et poser du carrelage dans la salle de bain.",
        "Météo : fortes pluies et vents violents attendus ce week-end en Bretagne.",
        "Restaurant végétarien au centre-ville : burgers, salades et jus de fruits frais.",
        "Impôts : les conseils pour remplir votre déclaration de revenus avant la date limite.",
        "Vélos électriques et trottinettes : la nouvelle façon de se déplacer en ville.",
        "Élection présidentielle : les candidats débattent de l'économie et de l'écologie.",
    ],
}


def labels(lang):
    with open(os.path.join(PKG, lang, f"{lang}_categorias.csv"), encoding="utf-8-sig", newline="") as f:
        rows = [r[0].strip() for r in csv.reader(f) if r]
    return rows[1:]


def main():
    out = {"generator": "scripts/gen_categorium_fixtures.py",
           "versions": {"transformers": transformers.__version__, "tensorflow": tf.__version__},
           "languages": {}}
    for lang, texts in TEXTS.items():
        model = TFBertForSequenceClassification.from_pretrained(os.path.join(PKG, lang, f"{lang}_hultig_model"))
        tok = BertTokenizer.from_pretrained(os.path.join(PKG, lang, f"hultig-bert-token-uncased_{lang}-vocab.txt"))
        names = labels(lang)
        cases = []
        for t in texts:
            enc = tok(t, return_tensors="tf")
            logits = model(enc).logits.numpy()[0].astype(np.float64)
            cases.append({"text": t, "ids": enc["input_ids"].numpy()[0].tolist(),
                          "logits": [round(float(v), 6) for v in logits],
                          "label": names[int(np.argmax(logits))]})
        out["languages"][lang] = {"labels": names, "cases": cases}
        print(lang, {c["label"] for c in cases})
    path = os.path.join(ROOT, "tests/fixtures/categorium.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
